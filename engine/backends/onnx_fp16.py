"""Rewrite an ONNX graph to compute in float16 while keeping float32 inputs and outputs.

TensorRT 11 builds strongly typed networks only: the ``FP16`` builder flag of
TensorRT 10 is gone, and the tensor types written in the ONNX file decide the
arithmetic (TensorRT 11 migration guide, "Migrating from Weak Typing to Strong
Typing"). NVIDIA points to ModelOpt AutoCast for the conversion; our two graphs
are small and plain (convolutions, instance norms, matmuls, elementwise ops,
no control flow), so this module does the same job in a page and keeps the
GPU extra free of ModelOpt:

- every float32 initializer, and every float32 tensor attribute, becomes float16
  (a value beyond float16's range, 65504, is refused rather than turned into inf);
- ``Cast(to=FLOAT)`` nodes cast to FLOAT16 instead;
- a ``Cast`` to float16 follows each float32 graph input and a ``Cast`` back to
  float32 precedes each float32 graph output, so callers still exchange float32
  arrays (the interface of every backend) and the file works with the same feeds;
- ``value_info`` is dropped: its float32 annotations would be stale, and
  runtimes infer it again.

The result is checked with ONNX's full checker (strict type inference), so an
op whose input must stay float32 fails here, at build time, with ONNX's message.
"""

from collections.abc import MutableSequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT16_MAX = float(np.finfo(np.float16).max)
HALF_SUFFIX = "__f16"
"""Appended to a graph input or output name for its float16 twin inside the graph."""


def to_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A float16-compute copy of ``model`` with the same float32 inputs, outputs and metadata.

    Raises:
        ValueError: the graph has subgraphs (If, Loop, Scan), a float value outside
            float16's range, or a graph input that is also a graph output.
        onnx.checker.ValidationError: the rewritten graph does not type-check.
    """
    converted = onnx.ModelProto()
    converted.CopyFrom(model)
    graph = converted.graph
    for initializer in graph.initializer:
        if initializer.data_type == TensorProto.FLOAT:
            initializer.CopyFrom(_half_tensor(initializer))
    for node in graph.node:
        _convert_attributes(node)
    initializer_names = {initializer.name for initializer in graph.initializer}
    inputs = [v.name for v in graph.input if _is_float32(v) and v.name not in initializer_names]
    outputs = [v.name for v in graph.output if _is_float32(v)]
    passthrough = set(inputs) & set(outputs)
    if passthrough:
        raise ValueError(f"graph inputs that are also outputs cannot be converted: {sorted(passthrough)}")
    renames = {name: name + HALF_SUFFIX for name in (*inputs, *outputs)}
    for node in graph.node:
        _rename(node.input, renames)
        _rename(node.output, renames)
    casts_in = [_cast(name, renames[name], TensorProto.FLOAT16) for name in inputs]
    casts_out = [_cast(renames[name], name, TensorProto.FLOAT) for name in outputs]
    nodes = [*casts_in, *graph.node, *casts_out]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]
    onnx.checker.check_model(converted, full_check=True)
    return converted


def _is_float32(value: onnx.ValueInfoProto) -> bool:
    return value.type.tensor_type.elem_type == TensorProto.FLOAT


def _half_tensor(tensor: onnx.TensorProto) -> onnx.TensorProto:
    values = numpy_helper.to_array(tensor)
    if values.size and float(np.abs(values).max()) > FLOAT16_MAX:
        raise ValueError(f"{tensor.name or 'a constant'} holds values beyond float16's range ({FLOAT16_MAX})")
    return numpy_helper.from_array(values.astype(np.float16), tensor.name)


def _convert_attributes(node: onnx.NodeProto) -> None:
    for attribute in node.attribute:
        if attribute.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            raise ValueError(f"{node.op_type} node {node.name!r} has a subgraph; only flat graphs are converted")
        if attribute.type == onnx.AttributeProto.TENSOR and attribute.t.data_type == TensorProto.FLOAT:
            attribute.t.CopyFrom(_half_tensor(attribute.t))
        if node.op_type == "Cast" and attribute.name == "to" and attribute.i == TensorProto.FLOAT:
            attribute.i = TensorProto.FLOAT16
        if node.op_type == "Constant" and attribute.name in ("value_float", "value_floats"):
            raise ValueError(f"Constant node {node.name!r} uses {attribute.name}; export it as a tensor value")


def _rename(names: MutableSequence[str], renames: dict[str, str]) -> None:
    for index, name in enumerate(names):
        if name in renames:
            names[index] = renames[name]


def _cast(source: str, target: str, to: int) -> onnx.NodeProto:
    return helper.make_node("Cast", [source], [target], name=f"cast_{target}", to=to)
