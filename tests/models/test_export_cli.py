"""``avatar export`` end to end: files and manifest, and ``--trt`` failing clearly where TensorRT cannot run."""

import json
from pathlib import Path

import onnxruntime as ort
import pytest

import models.export_cli as export_command
from engine.backends.model_files import resolve_source
from engine.backends.selection import tensorrt_unavailable_reason
from engine.backends.tensorrt_build import TENSORRT_REQUIREMENT
from engine.cli.main import main
from models.cause.io import save_cause
from models.ganimation.io import save_generator
from tests.engine.nets import small_cause, small_generator

pytestmark = pytest.mark.slow  # each run exports two networks with torch (~7 s)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("checkpoints")
    generator = small_generator(width=8)
    save_generator(generator, generator.config, folder / "gen.pth")
    save_cause(small_cause(), folder / "cause.pt")
    return ["--generator", str(folder / "gen.pth"), "--cause", str(folder / "cause.pt")]


def test_export_writes_both_graphs_and_the_manifest(checkpoints: list[str], tmp_path: Path, capsys) -> None:
    out = tmp_path / "deploy"
    assert main(["export", "-o", str(out), *checkpoints]) == 0
    for name in ("generator.onnx", "cause_step.onnx"):
        ort.InferenceSession(str(out / name), providers=["CPUExecutionProvider"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["networks"]) == {"generator", "cause"} and manifest["tensorrt"] is None
    stdout = capsys.readouterr().out
    assert f"wrote {out / 'generator.onnx'}" in stdout and f"wrote {out / 'manifest.json'}" in stdout


@pytest.mark.skipif(tensorrt_unavailable_reason() is None, reason="TensorRT can run here")
def test_trt_without_gpu_says_so_first_writes_onnx_and_exits_2(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also the default weights, announced as for ``avatar render``, after the TensorRT line."""
    said_before_export = []

    def export_and_note(*args, **kwargs):  # the real export, noting what was on stderr when it started
        said_before_export.append(capsys.readouterr().err)
        return real_export(*args, **kwargs)

    real_export = export_command.export_networks
    monkeypatch.setattr(export_command, "export_networks", export_and_note)
    out = tmp_path / "deploy"
    assert main(["export", "-o", str(out), "--trt"]) == 2
    first_words = said_before_export[0]
    assert first_words.startswith(f"avatar export: {TENSORRT_REQUIREMENT} (no CUDA GPU found")
    assert first_words.index(TENSORRT_REQUIREMENT) < first_words.index("weights: generator: ")
    assert (out / "generator.onnx").is_file() and (out / "cause_step.onnx").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    default = resolve_source("generator", None)
    assert manifest["tensorrt"] is None and manifest["networks"]["generator"]["trained"] is default.trained
    assert not list(out.glob("*.engine"))
    err = capsys.readouterr().err
    assert "error: no TensorRT engines built" in err and "pip install 'avatar-engine[gpu]'" in err


def test_missing_weights_are_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["export", "-o", str(tmp_path / "x"), "--generator", str(tmp_path / "nowhere.pth")]) == 2
    assert "nowhere.pth" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_failure_half_way_leaves_no_partial_output(checkpoints: list[str], tmp_path: Path, capsys) -> None:
    """The generator exports, then the CAUSE checkpoint turns out to be garbage: nothing is left behind."""
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    out = tmp_path / "deploy"
    assert main(["export", "-o", str(out), checkpoints[0], checkpoints[1], "--cause", str(broken)]) == 2
    assert "broken.pt" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".deploy.partial-*"))
