"""The fuzz corpus replays cleanly, fast; and a short coverage-guided run of each target finds nothing.

The corpus (``tests/fuzz/corpus/<target>/``) holds the hand-made seeds
(``tests/fuzz/seeds.py``) and inputs the fuzzer found: among them the two
bugs it found first (a deeply nested control message: RecursionError; an
Origin ``http://...]``: ValueError from the URL parser), fixed since.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.targets import CORPUS, SLOW_INPUT_S, TARGETS, run_timed

REPO = Path(__file__).resolve().parents[2]
CI_SECONDS = 5
"""How long CI fuzzes each target: a smoke run (findings come from longer runs: --seconds 600)."""


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_corpus_replays_without_an_error_and_fast(target: str) -> None:
    inputs = sorted((CORPUS / target).iterdir())
    assert len(inputs) >= 4, f"the {target} corpus has {len(inputs)} inputs"
    for path in inputs:
        duration_s = run_timed(TARGETS[target], path.read_bytes())
        assert duration_s < SLOW_INPUT_S, f"{path.name} took {duration_s:.2f} s"


@pytest.mark.slow
@pytest.mark.timeout(60 + 2 * CI_SECONDS * len(TARGETS))
@pytest.mark.skipif(shutil.which("true") is None or sys.platform != "linux", reason="atheris runs on Linux")
def test_a_short_fuzzing_run_of_each_target_finds_nothing(tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris is not installed: pip install 'avatar-engine[dev]'")
    for target in sorted(TARGETS):
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.fuzz.run",
                target,
                "--seconds",
                str(CI_SECONDS),
                "--out",
                str(tmp_path / target),
            ],
            cwd=tmp_path,  # where libFuzzer would write a crash-* file
            env={"PYTHONPATH": f"{REPO}:{REPO / 'clients' / 'python'}", "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=CI_SECONDS + 60,
        )
        tail = (run.stdout + run.stderr)[-2000:]
        assert run.returncode == 0 and "Done" in tail, f"{target}:\n{tail}"
        assert not list(tmp_path.glob("crash-*")), f"{target} crashed:\n{tail}"
