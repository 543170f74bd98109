"""Export both networks into one folder a deployment can take as is: ONNX files, TensorRT engines, a manifest.

The folder holds ``generator.onnx`` (dynamic batch axis, float32 in and out)
and ``cause_step.onnx`` (the CAUSE streaming step, its state as explicit inputs
and outputs, the lookahead in its metadata), exactly the files the CPU runtimes
load; optionally TensorRT engines for this machine's GPU and their timing
cache (:mod:`engine.backends.tensorrt_build`); and ``manifest.json``, which says what
each file is::

    {"format": "avatar-engine/export", "version": 1, "torch_version": "2.13.0+cpu",
     "networks": {"generator": {"file": "generator.onnx", "sha256": "...", "bytes": 1234,
                                "source": "...", "trained": false, "config": {...},
                                "inputs": {"images": ["batch", 3, 128, 128], ...}, "outputs": {...}},
                  "cause": {..., "lookahead_hops": 2}},
     "tensorrt": null | {"version": "11.4.0.106", "gpu": "NVIDIA H100 80GB HBM3",
                         "timing_cache": "timing-...cache",
                         "engines": {"generator": {"file": "...engine", "sha256": "...", "bytes": ...,
                                                   "precision": "f16", "batch": [1, 8, 64], "hops": null}, ...}}}

Weights are resolved as everywhere else (:mod:`engine.backends.model_files`):
a checkpoint is exported with torch, an ONNX file is copied, no file means
the trained default or, failing that, the untrained seeded network.
"""

import dataclasses
import json
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from engine.backends.model_files import DEFAULT_ONNX_NAMES, ModelSource, export_onnx, load_torch_network
from engine.backends.onnx_io import LOOKAHEAD_METADATA_KEY, parse_lookahead
from engine.backends.tensorrt_build import (
    SPECS,
    EngineSpec,
    build_engine,
    engine_file_name_for,
    file_sha256,
    gpu_name,
    import_tensorrt,
    timing_cache_file_name,
)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "avatar-engine/export"
MANIFEST_VERSION = 1


def export_networks(generator: ModelSource, cause: ModelSource, folder: Path) -> dict[str, Any]:
    """Write both ONNX files and the manifest into ``folder`` (created if missing); return the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    networks = {source.kind: _export_one(source, folder) for source in (generator, cause)}
    used_torch = not (generator.is_onnx and cause.is_onnx)  # then load_torch_network imported it
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "torch_version": sys.modules["torch"].__version__ if used_torch else None,
        "networks": networks,
        "tensorrt": None,
    }
    write_manifest(folder, manifest)
    return manifest


def add_tensorrt_engines(
    folder: Path,
    manifest: dict[str, Any],
    *,
    specs: Mapping[str, EngineSpec] = SPECS,
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Build (or find cached) an engine per network in ``folder``, record them in the manifest and rewrite it.

    ``specs`` maps ``generator`` and ``cause`` to their build settings;
    ``progress`` receives one line per engine, before a build starts (a
    generator build takes minutes). Needs tensorrt and a GPU.
    """
    trt = import_tensorrt()
    engines = {}
    for kind, entry in manifest["networks"].items():
        spec = specs[kind]
        onnx_path = folder / entry["file"]
        target = folder / engine_file_name_for(onnx_path, spec)
        if target.is_file():
            progress(f"{kind}: cached TensorRT engine {target.name}")
        else:
            progress(f"{kind}: building TensorRT engine ({spec.describe()}), minutes for the generator ...")
            build_engine(onnx_path, spec, target)
        engines[kind] = {
            "file": target.name,
            "sha256": file_sha256(target),
            "bytes": target.stat().st_size,
            "precision": spec.precision,
            "batch": list(spec.batch),
            "hops": list(spec.hops) if spec.hops is not None else None,
        }
    name = gpu_name()
    manifest["tensorrt"] = {
        "version": trt.__version__,
        "gpu": name,
        "timing_cache": timing_cache_file_name(gpu_name=name, tensorrt_version=trt.__version__),
        "engines": engines,
    }
    write_manifest(folder, manifest)
    return manifest


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` atomically (readers never see half a manifest)."""
    target = folder / MANIFEST_NAME
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(partial, target)
    return target


def _export_one(source: ModelSource, folder: Path) -> dict[str, Any]:
    """Write one network's ONNX file into ``folder``; return its manifest entry."""
    target = folder / DEFAULT_ONNX_NAMES[source.kind]
    config = None
    if source.is_onnx:
        assert source.path is not None
        if source.path.resolve() != target.resolve():
            partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
            shutil.copyfile(source.path, partial)
            os.replace(partial, target)
    else:
        net = load_torch_network(source)
        # plain JSON types: CauseConfig.to_dict turns its dilations tuple into a list
        config = net.config.to_dict() if source.kind == "cause" else dataclasses.asdict(net.config)
        export_onnx(net, source.kind, target, checkpoint=source.path)
    entry: dict[str, Any] = {
        "file": target.name,
        "sha256": file_sha256(target),
        "bytes": target.stat().st_size,
        "source": str(source.path) if source.path is not None else source.describe(),
        "trained": source.trained,
        "config": config,
        **_graph_interface(target),
    }
    return entry


def _graph_interface(path: Path) -> dict[str, Any]:
    """Inputs and outputs (name -> shape, a named axis as its name) and, for CAUSE, the lookahead."""
    import onnx

    model = onnx.load(str(path))

    def shapes(values: Any) -> dict[str, list[int | str]]:
        return {
            value.name: [dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim] for value in values
        }

    interface: dict[str, Any] = {"inputs": shapes(model.graph.input), "outputs": shapes(model.graph.output)}
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    if LOOKAHEAD_METADATA_KEY in metadata:
        interface["lookahead_hops"] = parse_lookahead(metadata[LOOKAHEAD_METADATA_KEY], path)
    return interface
