"""Fold plans: what an evaluation trains on and tests on, as lists of folds.

Every protocol is a plan of :class:`~emovox.data.protocols.Fold` s over one manifest: EmoBox,
leave-one-speaker-out, speaker k-fold, IEMOCAP sessions and random folds come from
:func:`~emovox.data.protocols.make_folds`; a cross-corpus run is one fold whose training side is
the training corpora and whose test side is the test corpora. :func:`emovox.evaluate.runner.run`
runs any plan the same way.
"""

from __future__ import annotations

import dataclasses

from emovox.data.manifest import Manifest
from emovox.data.protocols import Fold, make_folds


@dataclasses.dataclass(frozen=True)
class Plan:
    """Folds to run, and how their results are reported.

    Attributes:
        protocol: the name recorded in ``metrics.json`` (``emobox``, ``speakers-kfold-5``, ...).
        folds: the folds, in order.
        by_corpus: score every test corpus on its own too (``per_test_corpus``) and keep the
            corpus of every prediction.
    """

    protocol: str
    folds: tuple[Fold, ...]
    by_corpus: bool = False

    def select(self, numbers: list[int] | None) -> Plan:
        """The plan with only the folds numbered ``numbers`` (all when ``None``).

        Raises:
            ValueError: a fold number the plan does not have.
        """
        if not numbers:
            return self
        unknown = sorted(set(numbers) - {f.index for f in self.folds})
        if unknown:
            raise ValueError(
                f"fold(s) {unknown} do not exist; {self.protocol} has {len(self.folds)}"
            )
        chosen = tuple(f for f in self.folds if f.index in set(numbers))
        return dataclasses.replace(self, folds=chosen)

    @property
    def training_items(self) -> set[int]:
        """Every item that some fold trains on (only these need augmented variants)."""
        return {i for f in self.folds for i in f.train}


def protocol_plan(manifest: Manifest, protocol: str, k: int | None = None, seed: int = 0) -> Plan:
    """The folds of a protocol over ``manifest`` (:func:`~emovox.data.protocols.make_folds`)."""
    folds = make_folds(manifest, protocol, k=k, seed=seed)
    several = len({u.corpus for u in manifest}) > 1  # then every test corpus is scored alone too
    return Plan(protocol if k is None else f"{protocol}-{k}", tuple(folds), by_corpus=several)


def cross_corpus_plan(manifest: Manifest, test: set[int]) -> Plan:
    """One fold: train on every item not in ``test``, test on ``test`` (the test corpora)."""
    test_idx = tuple(sorted(test))
    train_idx = tuple(i for i in range(len(manifest)) if i not in test)
    fold = Fold(
        1,
        train_idx,
        test_idx,
        tuple(sorted({manifest[i].speaker for i in test_idx})),
        tuple(sorted({manifest[i].corpus for i in test_idx})),
    )
    return Plan("cross-corpus", (fold,), by_corpus=True)
