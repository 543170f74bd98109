"""``python -m bench <scenario> [--smoke] [options]``: run one benchmark scenario by name.

Each scenario prints a table and the targets it is judged against, and writes
``bench/results/<scenario>-<time>.json`` (with the machine description) and a
PNG beside it. ``--smoke`` runs it for a few seconds with small networks: a
check that it works, never a figure to quote. ``python -m bench <scenario> --help``
lists a scenario's options and their full-run defaults.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from bench import (
    backends,
    browser,
    chaos,
    churn,
    drift,
    e2e,
    encoders,
    gpu,
    peers,
    pipecat_drift,
    renderers,
    stages,
    throughput,
    vcam,
    whip,
)
from bench.machine import NOTICEABLE_STEAL, cpu_times, steal_share
from bench.report import RESULTS_DIR, format_table, format_targets, write_report

SCENARIOS: dict[str, ModuleType] = {
    module.NAME: module
    for module in (
        stages,
        e2e,
        browser,
        drift,
        throughput,
        peers,
        backends,
        renderers,
        encoders,
        gpu,
        churn,
        chaos,
        vcam,
        whip,
        pipecat_drift,
    )
}
"""Each module has NAME, SUMMARY, add_arguments(parser, smoke=...) and run(args) -> Report."""


def build_parser(smoke: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="scenario", metavar="SCENARIO", required=True)
    for name, module in SCENARIOS.items():
        sub = commands.add_parser(
            name,
            help=module.SUMMARY.replace("%", "%%"),
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument(
            "--smoke",
            action="store_true",
            help="a few seconds with small networks: checks that it runs (figures not representative)",
        )
        sub.add_argument(
            "--out-dir", type=Path, default=RESULTS_DIR, help="where the JSON and PNG go (default: bench/results/)"
        )
        module.add_arguments(sub, smoke=smoke)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(smoke="--smoke" in argv).parse_args(argv)
    started = cpu_times()
    report = SCENARIOS[args.scenario].run(args)
    steal = steal_share(started)
    report.setup["cpu_steal_share"] = steal
    print()
    print(format_table(report.headers, report.rows))
    if report.targets:
        print()
        print(format_targets(report.targets))
    json_path, png_path = write_report(report, out_dir=args.out_dir, command="python -m bench " + " ".join(argv))
    print(f"\nwrote {json_path}" + (f" and {png_path.name}" if png_path else ""))
    if steal is not None and steal > NOTICEABLE_STEAL:
        print(f"the hypervisor took {steal:.0%} of this machine's CPU time during the run: not a quiet-machine figure")
    if report.smoke:
        print("(smoke run: checks the scenario works; its figures are not representative)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
