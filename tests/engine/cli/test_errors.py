"""The CLI's error contract: a user's mistake is one line on stderr and exit status 2; a bug keeps its traceback.

Each case runs the real ``avatar`` command in its own process (what a user
types), with files a user could plausibly hand it.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from engine.backends.model_files import WEIGHTS_DIR
from engine.cli import main as cli_main
from engine.errors import EngineError, MissingExtraError, first_line, require


def avatar(*args: str, env: dict[str, str] | None = None, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, **(env or {})},
    )


def assert_one_line(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit 2, no traceback, and the error line (the last line of stderr) says ``words``."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("avatar "), line
    for word in words:
        assert word in line, (word, line)
    return line


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad-files")
    noise = os.urandom(5000)
    files = {
        "random.onnx": noise,
        "random.pth": noise,
        "truncated.onnx": (WEIGHTS_DIR / "generator.onnx").read_bytes()[:20_000],
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return {name: folder / name for name in files}


@pytest.mark.slow
def test_port_in_use_is_one_line_naming_the_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = assert_one_line(avatar("serve", "--port", str(port)), f"127.0.0.1:{port}", "--port")
    print(line)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flag", "name", "words"),
    [
        ("--cause", "random.onnx", ("random.onnx", "cause", "ONNX Runtime")),
        ("--generator", "truncated.onnx", ("truncated.onnx", "generator", "OpenVINO", "can't be parsed")),
        ("--generator", "random.pth", ("random.pth", "PyTorch checkpoint")),
        ("--cause", "generator.onnx", ("generator.onnx", "lookahead_hops")),
    ],
)
def test_unusable_weights_are_one_line_naming_the_file(
    bad_files: dict[str, Path], tmp_path: Path, flag: str, name: str, words: tuple[str, ...]
) -> None:
    path = WEIGHTS_DIR / name if name == "generator.onnx" else bad_files[name]
    line = assert_one_line(avatar("render", flag, str(path), "-o", str(tmp_path / "out.mp4")), *words)
    assert "weights_only=False" not in line  # torch's advice is wrong for us: never run code from a checkpoint
    assert not (tmp_path / "out.mp4").exists()
    print(line)


def test_a_flag_that_cannot_work_is_one_line() -> None:
    assert_one_line(avatar("serve", "--fps", "0"), "--fps")
    assert_one_line(avatar("render", "--face-box", "1,2,3"), "face box")


def test_the_local_speaker_commands_check_their_picture_options_alike() -> None:
    assert_one_line(avatar("live", "--fps", "61"), "--fps must be in 1..60")
    assert_one_line(avatar("live", "--stats-interval", "-1"), "--stats-interval must be >= 0")
    assert_one_line(avatar("publish", "--whip", "http://127.0.0.1:9/whip", "--size", "3"), "--size must be an even")
    assert "the video's longer side" in avatar("publish", "--help").stdout
    assert "camera frame rate" in avatar("live", "--help").stdout


def test_a_missing_extra_names_the_extra() -> None:
    with pytest.raises(MissingExtraError, match=r"pip install 'avatar-engine\[train\]'"):
        require("a_module_nobody_installs", extra="train", purpose="this test")


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the engine's own errors become one line; a ValueError from a bug must not hide as one."""

    def broken(args: object) -> int:
        raise ValueError("a bug, not a user error")

    parser = cli_main.build_parser()
    args = parser.parse_args(["info"])
    monkeypatch.setattr(cli_main, "build_parser", lambda: _FixedParser(args, broken))
    with pytest.raises(ValueError, match="a bug"):
        cli_main.main(["info"])


class _FixedParser:
    def __init__(self, args: object, run: object) -> None:
        self._args = args
        self._run = run

    def parse_args(self, argv: object) -> object:
        self._args.run = self._run  # type: ignore[attr-defined]
        return self._args


def test_first_line_keeps_the_gist_of_a_runtime_dump() -> None:
    dump = RuntimeError("Exception from src/core.cpp:84:\nCheck 'x' failed at a.cpp:1:\nFrontEnd failed:\nbad model\n")
    assert first_line(dump) == "RuntimeError: FrontEnd failed: bad model"
    assert issubclass(MissingExtraError, EngineError) and issubclass(MissingExtraError, ImportError)
