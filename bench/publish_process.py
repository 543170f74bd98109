"""``python -m bench.publish_process TRACE_FILE -- <avatar publish options>``: ``avatar publish`` as a user runs it,
its session watched (``bench/cli_session.py``): every input chunk's arrival and every sent frame's trace are
written to TRACE_FILE as JSON lines as they happen, nothing kept in memory (``bench whip`` reads this process's
memory over an hour). Pass ``--stats-interval 0``.
"""

import sys
from collections.abc import Sequence
from pathlib import Path

import engine.cli.publish
from bench.cli_session import JsonLinesWriter, watching
from engine.cli.main import main as avatar


def main(argv: Sequence[str]) -> int:
    if len(argv) < 2 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    with Path(argv[0]).open("w") as out, watching(engine.cli.publish, JsonLinesWriter(out)):
        return avatar(["publish", *argv[2:]])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
