"""The export folder: ONNX files that compute what the torch networks compute, and a manifest that says so."""

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

from engine.backends.model_files import ModelSource, resolve_source
from engine.backends.tensorrt_build import file_sha256
from models.cause.io import save_cause
from models.export import MANIFEST_FORMAT, MANIFEST_NAME, export_networks
from models.ganimation.io import save_generator
from tests.engine.nets import random_mel, small_cause, small_generator

pytestmark = pytest.mark.slow  # two torch ONNX exports, ~7 s on 2 cores


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], Any, Any]:
    """Small networks saved as checkpoints and exported through the real path."""
    work = tmp_path_factory.mktemp("export")
    generator, cause = small_generator(width=8), small_cause(lookahead_hops=3)
    save_generator(generator, generator.config, work / "gen.pth")
    save_cause(cause, work / "cause.pt")
    folder = work / "out"
    sources = resolve_source("generator", work / "gen.pth"), resolve_source("cause", work / "cause.pt")
    manifest = export_networks(*sources, folder)
    return folder, manifest, generator, cause


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("batch", [1, 5])
def test_generator_onnx_matches_torch_at_any_batch(exported, batch: int) -> None:
    folder, _, generator, _ = exported
    rng = np.random.default_rng(batch)
    images = rng.uniform(-1, 1, (batch, 3, 128, 128)).astype(np.float32)
    aus = rng.uniform(0, 1, (batch, 17)).astype(np.float32)
    color, mask = session(folder / "generator.onnx").run(None, {"images": images, "aus": aus})
    with torch.inference_mode():
        want_color, want_mask = generator(torch.from_numpy(images), torch.from_numpy(aus))
    np.testing.assert_allclose(color, want_color.numpy(), atol=1e-4)
    np.testing.assert_allclose(mask, want_mask.numpy(), atol=1e-4)


def test_cause_step_onnx_streams_like_torch(exported) -> None:
    """Chunks of 1, 4 and 7 hops with the state carried through the graph's inputs and outputs."""
    folder, _, _, cause = exported
    step = session(folder / "cause_step.onnx")
    mel = random_mel(12)[None]
    state = [s.numpy() for s in cause.initial_state(1)]
    names = [f"state_{i}" for i in range(len(state))]
    outputs = []
    for start, stop in ((0, 1), (1, 5), (5, 12)):
        au, *state = step.run(None, {"mel": mel[:, start:stop], **dict(zip(names, state))})
        outputs.append(au)
    with torch.inference_mode():
        want = cause.step(torch.from_numpy(mel), *cause.initial_state(1))[0].numpy()
    np.testing.assert_allclose(np.concatenate(outputs, axis=1), want, atol=1e-4)


def test_manifest_describes_the_files(exported) -> None:
    folder, manifest, generator, cause = exported
    assert json.loads((folder / MANIFEST_NAME).read_text()) == manifest
    assert manifest["format"] == MANIFEST_FORMAT and manifest["version"] == 1
    assert manifest["torch_version"] == torch.__version__
    assert manifest["tensorrt"] is None
    networks = manifest["networks"]
    for entry in networks.values():
        path = folder / entry["file"]
        assert entry["sha256"] == file_sha256(path) and entry["bytes"] == path.stat().st_size
        assert entry["trained"] is True and entry["source"].endswith((".pth", ".pt"))
    assert networks["generator"]["file"] == "generator.onnx"
    assert networks["generator"]["config"] == dataclasses.asdict(generator.config)
    assert networks["generator"]["inputs"] == {"images": ["batch", 3, 128, 128], "aus": ["batch", 17]}
    assert networks["generator"]["outputs"] == {"color": ["batch", 3, 128, 128], "mask": ["batch", 1, 128, 128]}
    assert networks["cause"]["file"] == "cause_step.onnx"
    assert networks["cause"]["config"]["dilations"] == list(cause.config.dilations)
    assert networks["cause"]["lookahead_hops"] == 3
    assert networks["cause"]["inputs"]["mel"] == ["batch", "hops", 80]
    assert networks["cause"]["outputs"]["new_state_0"] == ["batch", 2, 80]


def test_onnx_sources_are_copied_without_torch(exported, tmp_path: Path) -> None:
    folder, first, _, _ = exported
    sources = ModelSource("generator", folder / "generator.onnx"), ModelSource("cause", folder / "cause_step.onnx")
    manifest = export_networks(*sources, tmp_path / "copy")
    assert manifest["torch_version"] is None
    for kind in ("generator", "cause"):
        assert manifest["networks"][kind]["sha256"] == first["networks"][kind]["sha256"]
        assert manifest["networks"][kind]["config"] is None
    assert manifest["networks"]["cause"]["lookahead_hops"] == 3
    # exporting a folder onto itself keeps the files
    again = export_networks(*sources, folder)
    assert again["networks"]["generator"]["sha256"] == first["networks"]["generator"]["sha256"]
