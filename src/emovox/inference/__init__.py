"""Inference: model bundles, the :class:`~emovox.inference.recognizer.Recognizer`, the ONNX
backend and batch scoring. Nothing here imports the training code."""
