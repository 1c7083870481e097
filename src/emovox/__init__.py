"""emovox: speech emotion recognition, from a corpus folder to honest numbers and predictions."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types

from emovox._version import __version__
from emovox.audio import AudioError, load_audio

__all__ = ["AudioError", "Recognizer", "__version__", "load_audio"]

MOVED_MODULES: dict[str, str] = {
    "emovox.batch": "emovox.inference.batch",
    "emovox.bundle": "emovox.inference.bundle",
    "emovox.cli": "emovox.apps.cli",
    "emovox.corpora": "emovox.data.corpora",
    "emovox.demo": "emovox.apps.demo",
    "emovox.evaluation": "emovox.evaluate.runner",
    "emovox.labels": "emovox.data.labels",
    "emovox.live": "emovox.apps.live",
    "emovox.longaudio": "emovox.segmentation",
    "emovox.manifest": "emovox.data.manifest",
    "emovox.normalization": "emovox.features.normalization",
    "emovox.onnx_backend": "emovox.inference.onnx_backend",
    "emovox.pipeline": "emovox.train.pipeline",
    "emovox.protocols": "emovox.data.protocols",
    "emovox.recognizer": "emovox.inference.recognizer",
    "emovox.robustness": "emovox.evaluate.conditions",
    "emovox.segments": "emovox.segmentation",
    "emovox.server": "emovox.apps.server",
    "emovox.summary": "emovox.data.summary",
    "emovox.synth": "emovox.data.synth",
    "emovox.taxonomy": "emovox.data.taxonomy",
    "emovox.training": "emovox.train",
}
"""Where the modules of emovox 0.1's flat layout live now: ``import emovox.segments`` (and any
other old path) still works and gives the module's public names from its new home."""


class _MovedModule(types.ModuleType):
    """Stands for an old module path; every attribute is read from the module's new home."""

    def __init__(self, name: str, target: str) -> None:
        super().__init__(name, f"Moved to {target}.")
        self.__target = target

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self.__target), attr)

    def __dir__(self) -> list[str]:
        return dir(importlib.import_module(self.__target))


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED_MODULES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return _MovedModule(spec.name, MOVED_MODULES[spec.name])

    def exec_module(self, module) -> None:
        return None


if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
    sys.meta_path.append(_MovedFinder())


def __getattr__(name: str):
    # The recognizer pulls in torch; import it lazily so ``import emovox`` stays light.
    if name == "Recognizer":
        return importlib.import_module("emovox.inference.recognizer").Recognizer
    raise AttributeError(f"module 'emovox' has no attribute {name!r}")
