"""GANimation, the face generator: the networks (``net``), checkpoints of every codebase that trains them (``io``),
the ONNX export (``export``)."""
