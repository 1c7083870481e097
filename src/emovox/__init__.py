"""emovox: speech emotion recognition, from a corpus folder to honest numbers and predictions."""

from __future__ import annotations

__version__ = "0.1.0"

from emovox.audio import AudioError, load_audio

__all__ = ["AudioError", "Recognizer", "__version__", "load_audio"]


def __getattr__(name: str):
    # The recognizer pulls in torch; import it lazily so ``import emovox`` stays light.
    if name == "Recognizer":
        from emovox.recognizer import Recognizer

        return Recognizer
    raise AttributeError(f"module 'emovox' has no attribute {name!r}")
