"""The Python client installs and runs on its own: a wheel of clients/python in a fresh virtual environment
that holds numpy and websockets and nothing else (no engine, no aiohttp), against a real server."""

import asyncio
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import numpy
import pytest
import pytest_asyncio
import websockets

from engine.cli.render import SAMPLE_SPEECH
from engine.server.config import ServerConfig
from tests.engine.server.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow
on_server_loop = pytest.mark.asyncio(loop_scope="module")

CLIENT_PROJECT = Path(__file__).resolve().parents[2] / "clients" / "python"
PROTOCOL_MD = CLIENT_PROJECT.parent / "PROTOCOL.md"

CHECK_SCRIPT = """
import re, sys
import avatar_client, avatar_protocol
text = open(sys.argv[1], encoding="utf-8").read()
block = re.search(r"<!-- worked-example: frame-record -->\\s*```text\\n(.*?)```", text, re.S).group(1)
record = avatar_protocol.parse_server_message(bytes.fromhex("".join(l[6:] for l in block.splitlines())))
loaded = sorted(m.split(".")[0] for m in sys.modules if m.split(".")[0] in ("engine", "aiohttp", "models", "av"))
print(type(record).__name__, record.index, record.audio_sample, record.server_latency_us, float(record.aus[8]), loaded)
"""


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the client's wheel, numpy and websockets; returns its python."""
    root = tmp_path_factory.mktemp("client-wheel")
    source = shutil.copytree(CLIENT_PROJECT, root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(source)],
        check=True,
        timeout=300,
    )
    (wheel,) = (root / "dist").glob("avatar_client-*.whl")
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.check_output([python, "-c", purelib], text=True).strip())
    # The two dependencies, as installed here (offline): their packages and metadata, nothing else.
    for module in (numpy, websockets):
        installed = Path(module.__file__).parent.parent
        for entry in installed.iterdir():
            if entry.name == module.__name__ or entry.name.startswith((f"{module.__name__}.", f"{module.__name__}-")):
                (site / entry.name).symlink_to(entry)
    subprocess.run(
        [*pip, "--python", str(python), "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=300,
    )
    return python


def test_the_wheel_needs_numpy_and_websockets_only(client_venv: Path) -> None:
    (wheel,) = client_venv.parents[2].glob("dist/avatar_client-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    requires = sorted(line.split(": ", 1)[1] for line in metadata.splitlines() if line.startswith("Requires-Dist:"))
    assert requires == ["numpy>=1.26", 'sounddevice>=0.4; extra == "mic"', "websockets>=15"]
    assert {name.split("/")[0] for name in names if not name.startswith("avatar_client-")} == {
        "avatar_client",
        "avatar_protocol",
    }
    check = subprocess.run([str(client_venv), "-m", "pip", "--version"], capture_output=True, text=True)
    assert check.returncode != 0  # no pip either: the venv holds exactly the client and its two dependencies


def test_the_installed_client_parses_records_without_the_engine(client_venv: Path) -> None:
    out = subprocess.run(
        [str(client_venv), "-I", "-c", CHECK_SCRIPT, str(PROTOCOL_MD)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=client_venv.parents[2],
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["FrameRecord", "2", "1280", "1234", "1.5", "[]"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(server_config: ServerConfig) -> AsyncIterator[LiveServer]:
    async with live_server(server_config) as running:
        yield running


@on_server_loop
async def test_the_installed_cli_streams_speech_from_a_real_server(client_venv: Path, server: LiveServer) -> None:
    process = await asyncio.create_subprocess_exec(
        str(client_venv),
        "-I",
        "-m",
        "avatar_client",
        "stream",
        str(SAMPLE_SPEECH),
        "--url",
        server.ws_url,
        "--blendshapes",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=client_venv.parents[2],
        env={"PATH": os.environ.get("PATH", "")},
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, stderr.decode()
    rows = stdout.decode().splitlines()
    assert len(rows) == 1 + 218 and len(rows[0].split(",")) == 2 + 17 + 52
    assert "218 frames for 8.69 s of audio at 25 fps" in stderr.decode()
