"""The float16 rewrite keeps a graph's float32 interface and its numbers, to float16 rounding."""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from engine.backends.onnx_fp16 import to_float16

FLOAT16_EPS = float(np.finfo(np.float16).eps)
"""2**-10: the spacing of float16 values in [1, 2)."""


def tiny_graph(weight: np.ndarray | None = None) -> onnx.ModelProto:
    """x (N, 2, 4, 4) -> Conv 3x3 -> InstanceNorm -> Sigmoid = y, plus y2 = Cast(Cast(x, int64), float) * 0.5.

    Small enough to build in microseconds, and covering what the rewrite
    touches: float initializers, a Cast to FLOAT, a float tensor attribute
    (Constant), graph inputs and outputs, and an output that another node reads.
    """
    rng = np.random.default_rng(0)
    weight = rng.normal(0, 0.5, (3, 2, 3, 3)).astype(np.float32) if weight is None else weight
    initializers = [
        numpy_helper.from_array(weight, "w"),
        numpy_helper.from_array(np.ones(3, np.float32), "scale"),
        numpy_helper.from_array(np.zeros(3, np.float32), "bias"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("InstanceNormalization", ["conv", "scale", "bias"], ["norm"]),
        helper.make_node("Sigmoid", ["norm"], ["y"]),
        helper.make_node("Cast", ["x"], ["x_int"], to=TensorProto.INT64),
        helper.make_node("Cast", ["x_int"], ["x_float"], to=TensorProto.FLOAT),
        helper.make_node("Constant", [], ["half"], value=numpy_helper.from_array(np.array(0.5, np.float32))),
        helper.make_node("Mul", ["x_float", "half"], ["y2"]),
        helper.make_node("Identity", ["y"], ["y_copy"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 4, 4])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 4, 4]),
            helper.make_tensor_value_info("y2", TensorProto.FLOAT, ["N", 2, 4, 4]),
            helper.make_tensor_value_info("y_copy", TensorProto.FLOAT, ["N", 3, 4, 4]),
        ],
        initializers,
    )
    # ir_version: onnxruntime 1.31 reads up to 13, onnx 1.23 writes 14 by default
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    model.metadata_props.add(key="lookahead_hops", value="2")
    return model


def run(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feed)


def test_interface_stays_float32_and_everything_inside_is_float16() -> None:
    converted = to_float16(tiny_graph())
    graph = converted.graph
    assert [v.type.tensor_type.elem_type for v in (*graph.input, *graph.output)] == [TensorProto.FLOAT] * 4
    assert [v.name for v in (*graph.input, *graph.output)] == ["x", "y", "y2", "y_copy"]
    assert {i.data_type for i in graph.initializer} == {TensorProto.FLOAT16}
    casts = {n.output[0]: n.attribute[0].i for n in graph.node if n.op_type == "Cast"}
    assert casts["x_float"] == TensorProto.FLOAT16
    constant = next(n for n in graph.node if n.op_type == "Constant")
    assert constant.attribute[0].t.data_type == TensorProto.FLOAT16
    assert {p.key: p.value for p in converted.metadata_props} == {"lookahead_hops": "2"}


def test_numbers_match_float32_to_float16_rounding() -> None:
    model = tiny_graph()
    x = np.random.default_rng(1).normal(0, 1, (3, 2, 4, 4)).astype(np.float32)
    reference = run(model, {"x": x})
    converted = run(to_float16(model), {"x": x})
    for got, want in zip(converted, reference):
        assert got.dtype == np.float32
        # outputs in [0, 1] (sigmoid) or small integers * 0.5: a few float16 steps at most
        np.testing.assert_allclose(got, want, atol=8 * FLOAT16_EPS)


def test_the_input_model_is_left_alone() -> None:
    model = tiny_graph()
    before = model.SerializeToString()
    to_float16(model)
    assert model.SerializeToString() == before


def test_values_beyond_float16_are_refused() -> None:
    weight = np.full((3, 2, 3, 3), 1e6, np.float32)
    with pytest.raises(ValueError, match="float16's range"):
        to_float16(tiny_graph(weight))


def test_subgraphs_are_refused() -> None:
    branch = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["z"])],
        "branch",
        [],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])],
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["out"], then_branch=branch, else_branch=branch)],
        "with_if",
        [
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1])],
    )
    with pytest.raises(ValueError, match="subgraph"):
        to_float16(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8))


@pytest.mark.slow
def test_generator_export_runs_in_float16_close_to_float32(tmp_path: Path) -> None:
    """The real graph: every op of the generator type-checks and runs after the rewrite."""
    from engine.backends.model_files import export_onnx
    from tests.engine.nets import small_generator

    path = tmp_path / "generator.onnx"
    export_onnx(small_generator(width=8), "generator", path)
    rng = np.random.default_rng(2)
    feed = {
        "images": rng.uniform(-1, 1, (3, 3, 128, 128)).astype(np.float32),
        "aus": rng.uniform(0, 1, (3, 17)).astype(np.float32),
    }
    reference = run(onnx.load(str(path)), feed)
    converted = run(to_float16(onnx.load(str(path))), feed)
    for got, want in zip(converted, reference):
        # color in [-1, 1], mask in [0, 1]; ~20 layers of float16 rounding, renormalised by instance norms
        assert np.abs(got - want).max() < 64 * FLOAT16_EPS
        assert np.abs(got - want).mean() < 4 * FLOAT16_EPS
