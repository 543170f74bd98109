"""Every runtime computes the same networks; weights resolve and export as documented."""

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest

from engine.backends import BackendOptions, create_backends
from engine.backends.base import BackendUnavailable
from engine.backends.model_files import ModelSource, export_onnx, onnx_file, resolve_source
from engine.backends.onnxruntime_backend import OnnxRuntimeAUStep, OnnxRuntimeGenerator
from engine.backends.openvino_backend import OpenVinoGenerator
from engine.backends.torch_backend import TorchGenerator
from engine.errors import ModelFileError
from models.cause.io import save_cause
from models.ganimation.io import save_generator
from tests.engine.nets import small_cause, small_generator


@pytest.fixture(scope="module")
def generator_files(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("generator")
    net = small_generator(width=8)
    onnx_path = tmp / "generator.onnx"
    export_onnx(net, "generator", onnx_path)
    return net, onnx_path


def inputs(batch: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(batch)
    return (
        rng.uniform(-1, 1, (batch, 3, 128, 128)).astype(np.float32),
        rng.uniform(0, 5, (batch, 17)).astype(np.float32),
    )


@pytest.mark.parametrize("batch", [1, 3])
def test_cpu_runtimes_match_torch(generator_files, batch: int) -> None:
    net, onnx_path = generator_files
    images, aus = inputs(batch)
    ref_color, ref_mask = TorchGenerator(net, threads=1).run(images, aus)
    for backend in (OnnxRuntimeGenerator(onnx_path, threads=1), OpenVinoGenerator(onnx_path, threads=1)):
        color, mask = backend.run(images, aus)
        assert color.shape == (batch, 3, 128, 128) and mask.shape == (batch, 1, 128, 128)
        np.testing.assert_allclose(color, ref_color, atol=1e-4, err_msg=backend.name)
        np.testing.assert_allclose(mask, ref_mask, atol=1e-4, err_msg=backend.name)


def test_openvino_streams_run_in_parallel_threads_with_the_same_results(generator_files) -> None:
    _, onnx_path = generator_files
    backend = OpenVinoGenerator(onnx_path, threads=1, streams=2)
    assert backend.parallel_runs == 2
    batches = [inputs(batch) for batch in (1, 2, 1, 3)]
    serial = [backend.run(*batch) for batch in batches]
    with ThreadPoolExecutor(max_workers=2) as pool:
        parallel = list(pool.map(lambda batch: backend.run(*batch), batches))
    for (color, mask), (want_color, want_mask) in zip(parallel, serial):
        np.testing.assert_array_equal(color, want_color)
        np.testing.assert_array_equal(mask, want_mask)


def test_bf16_stays_close_to_f32(generator_files) -> None:
    net, onnx_path = generator_files
    try:
        backend = OpenVinoGenerator(onnx_path, threads=1, precision="bf16")
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    images, aus = inputs(2)
    ref_color, ref_mask = TorchGenerator(net, threads=1).run(images, aus)
    color, mask = backend.run(images, aus)
    # bfloat16 keeps 8 bits of mantissa: a few hundredths on values in [-1, 1]
    assert np.abs(color - ref_color).mean() < 0.02 and np.abs(mask - ref_mask).mean() < 0.02


def test_aus_are_scaled_from_intensities(generator_files) -> None:
    """The backend takes 0..5 intensities; the network sees intensity / 5."""
    import torch

    net, onnx_path = generator_files
    images, aus = inputs(1)
    with torch.inference_mode():
        expected, _ = net(torch.from_numpy(images), torch.from_numpy(aus / 5))
    color, _ = OnnxRuntimeGenerator(onnx_path, threads=1).run(images, aus)
    np.testing.assert_allclose(color, expected.numpy(), atol=1e-4)


def test_cause_onnx_without_lookahead_metadata_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cause.onnx"
    export_onnx(small_cause(2), "cause", path)
    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match="lookahead_hops"):
        OnnxRuntimeAUStep(path, threads=1)


def test_checkpoints_export_once_into_the_cache(tmp_path: Path) -> None:
    checkpoint = tmp_path / "cause.pt"
    save_cause(small_cause(1), checkpoint)
    source = resolve_source("cause", checkpoint)
    first = onnx_file(source)
    stamp = first.stat().st_mtime_ns
    assert onnx_file(source) == first and first.stat().st_mtime_ns == stamp
    assert OnnxRuntimeAUStep(first, threads=1).lookahead_hops == 1


def test_generator_checkpoint_runs_in_every_backend(tmp_path: Path) -> None:
    net = small_generator(width=8)
    checkpoint = tmp_path / "gen.pth"
    save_generator(net, net.config, checkpoint)
    cause = tmp_path / "cause.pt"
    save_cause(small_cause(2), cause)
    images, aus = inputs(1)
    outputs = {}
    for name in ("torch", "onnxruntime", "openvino"):
        generator, au_step = create_backends(
            name, resolve_source("generator", checkpoint), resolve_source("cause", cause), BackendOptions(threads=1)
        )
        outputs[name] = generator.run(images, aus)[0]
        assert au_step.lookahead_hops == 2
    np.testing.assert_allclose(outputs["onnxruntime"], outputs["torch"], atol=1e-4)
    np.testing.assert_allclose(outputs["openvino"], outputs["torch"], atol=1e-4)


def test_bad_choices_are_explained(tmp_path: Path) -> None:
    untrained = ModelSource("generator", None), ModelSource("cause", None)
    with pytest.raises(ValueError, match="choose one of: torch, onnxruntime, openvino"):
        create_backends("tensorflow", *untrained)
    with pytest.raises(ValueError, match="bf16"):
        create_backends("onnxruntime", *untrained, BackendOptions(precision="bf16"))
    with pytest.raises(ModelFileError, match="nowhere.pth"):
        resolve_source("generator", tmp_path / "nowhere.pth")
    onnx_only = tmp_path / "g.onnx"
    onnx_only.write_bytes(b"")
    with pytest.raises(ValueError, match="torch backend needs a PyTorch checkpoint"):
        create_backends("torch", resolve_source("generator", onnx_only), untrained[1])


FIRST_RUNS_AT_ONCE = """
import sys, threading
from pathlib import Path
import numpy as np
from engine.backends.openvino_backend import OpenVinoGenerator
generator = OpenVinoGenerator(Path(sys.argv[1]), threads=1, precision="f32", streams=4)
barrier = threading.Barrier(4)
def first_frame():
    barrier.wait()
    generator.run(np.zeros((1, 3, 128, 128), np.float32), np.zeros((1, 17), np.float32))
threads = [threading.Thread(target=first_frame) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
"""


@pytest.mark.slow
def test_openvino_first_runs_on_several_threads_at_once_do_not_hang() -> None:
    # A regression: the first array-making call into OpenVINO's bindings from two threads at once deadlocked
    # (pybind11's one-time numpy lookup), about one process in four this way; a fresh process each time,
    # since the lookup happens once per process.
    generator = onnx_file(resolve_source("generator", None))
    for attempt in range(8):
        done = subprocess.run([sys.executable, "-c", FIRST_RUNS_AT_ONCE, str(generator)], timeout=60, check=False)
        assert done.returncode == 0, f"attempt {attempt}"
