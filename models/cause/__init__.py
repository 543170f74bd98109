"""CAUSE, the causal speech-to-AU estimator: the network (``net``), its checkpoints (``io``), its ONNX export
(``export``)."""
