"""``python -m tests.fuzz.run TARGET [--seconds S]``: coverage-guided fuzzing (atheris) of one parser.

Seeds come from ``tests/fuzz/corpus/TARGET/`` (kept in the repository, read
only); what the fuzzer finds new goes to ``--out`` (a new temporary folder
by default), and a crashing input to ``crash-*`` in the current folder, as
libFuzzer writes it. Copy an interesting input into the corpus folder to keep
it. CI runs each target for a few seconds (``tests/fuzz/test_fuzz.py``).
"""

import argparse
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["engine.server"]):
    from tests.fuzz.targets import CORPUS, TARGETS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__)
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--seconds", type=int, default=60, help="how long to fuzz (default: 60)")
    parser.add_argument("--out", type=Path, default=None, help="folder for new inputs (default: a temporary one)")
    parser.add_argument("--max-len", type=int, default=8192, help="longest input tried, bytes (default: 8192)")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix=f"fuzz-{args.target}-"))
    out.mkdir(parents=True, exist_ok=True)
    seeds = CORPUS / args.target
    libfuzzer_args = [
        sys.argv[0],
        str(out),
        str(seeds),
        f"-max_total_time={args.seconds}",
        f"-max_len={args.max_len}",
        "-timeout=5",
        "-rss_limit_mb=4096",
        "-print_final_stats=1",
    ]
    print(f"fuzzing {args.target} for {args.seconds} s; seeds {seeds}, new inputs -> {out}", flush=True)
    atheris.Setup(libfuzzer_args, TARGETS[args.target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
