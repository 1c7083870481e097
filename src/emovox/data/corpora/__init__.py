"""Corpus recipes: one module per corpus, each turning a folder into a :class:`Manifest`.

A new corpus is one new module with a ``scan(root, **options) -> Manifest`` function and one line
in :data:`CORPORA`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from emovox.data.corpora import (
    ased,
    baved,
    cremad,
    csv_corpus,
    emodb,
    folder,
    iemocap,
    nemo,
    ravdess,
    savee,
    tess,
    urdu,
)
from emovox.data.manifest import Manifest

CORPORA: dict[str, Callable[..., Manifest]] = {
    "ravdess": ravdess.scan,
    "folder": folder.scan,
    "csv": csv_corpus.scan,
    "emodb": emodb.scan,
    "tess": tess.scan,
    "savee": savee.scan,
    "cremad": cremad.scan,
    "iemocap": iemocap.scan,
    "urdu": urdu.scan,
    "nemo": nemo.scan,
    "ased": ased.scan,
    "baved": baved.scan,
}


def scan_corpus(name: str, root: str | os.PathLike, **options) -> Manifest:
    """Scan ``root`` with the recipe registered as ``name``."""
    try:
        recipe = CORPORA[name]
    except KeyError:
        raise ValueError(f"unknown corpus {name!r}; known: {', '.join(sorted(CORPORA))}") from None
    return recipe(root, **options)


__all__ = ["CORPORA", "corpus_facts", "scan_corpus"]


def corpus_facts(name: str) -> dict[str, str]:
    """A corpus recipe's ``language``, ``licence`` and ``citation`` (its module's constants;
    ``"unknown"`` for a recipe that states none, such as a user's folder or CSV)."""
    module = _MODULES.get(name)
    return {
        key: str(getattr(module, key.upper(), "unknown"))
        for key in ("language", "licence", "citation")
    }


_RECIPES = (
    ased, baved, cremad, csv_corpus, emodb, folder, iemocap, nemo, ravdess, savee, tess, urdu
)
_MODULES = {m.NAME: m for m in _RECIPES}
