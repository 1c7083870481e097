"""Robustness reports: scoring each fold's model on its test files under fixed test conditions.

``emovox evaluate --condition white:20 --condition gain:-20 ...``: after a fold's model is trained,
its test files are scored again with their audio changed (noise at an SNR, a gain with clipping, a
pitch shift, a room). The features of every condition are extracted once for all files, with
per-file seeds (:func:`emovox.augment.condition_transform`), and cached under their own variant.
``metrics.json`` gets ``conditions`` (means over folds, like the clean numbers) and ``report.md``
a table of the UA lost to each condition.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Collection, Sequence

import numpy as np

from emovox.augment import Condition, condition_transform, parse_condition
from emovox.features import FeatureCache, extract_files
from emovox.metrics import classification_metrics
from emovox.models import SERModel
from emovox.progress import console
from emovox.train.config import TrainConfig
from emovox.train.dataset import Dataset
from emovox.train.pipeline import predict_subset


def parse_conditions(specs: Sequence[str | Condition]) -> list[Condition]:
    """Checked test conditions without repeats, ``clean`` first (it is always included).

    Raises:
        ValueError: a spec is malformed (the message names it).
    """
    out = {"clean": Condition("clean")}
    for spec in specs:
        cond = spec if isinstance(spec, Condition) else parse_condition(spec)
        out.setdefault(cond.name, cond)
    return list(out.values())


class ConditionScorer:
    """Scores models on items of ``data`` under test conditions.

    The features of a condition are extracted for the items a fold scores, the first time they
    are scored (then kept for later folds, and cached on disk when ``cache`` is given), so a run
    of some folds pays only for their test files.

    Args:
        data: the clean dataset (its items, labels and feature).
        conditions: the conditions (``clean`` is scored from ``data`` itself).
        cache: the feature cache.
        progress: show extraction progress.
        workers: decoding threads.
    """

    def __init__(
        self,
        data: Dataset,
        conditions: Sequence[str | Condition],
        cache: FeatureCache | None = None,
        progress: bool = True,
        workers: int = 2,
    ) -> None:
        self.data = data
        self.conditions = [c for c in parse_conditions(conditions) if c.kind != "clean"]
        self.cache, self.progress, self.workers = cache, progress, workers
        self._done: dict[str, tuple[list, list[int], set[int]]] = {}

    @property
    def names(self) -> list[str]:
        """The names of the scored (non-clean) conditions."""
        return [c.name for c in self.conditions]

    def dataset(
        self, condition: Condition, indices: Sequence[int] | None = None
    ) -> tuple[Dataset, list[int]]:
        """``data`` with the features of ``condition`` for ``indices`` (default: every item;
        ``None`` where not extracted or where extraction failed) and the clipped samples of each
        item."""
        data = self.data
        n = len(data.manifest)
        if condition.name not in self._done:
            self._done[condition.name] = ([None] * n, [0] * n, set())
        feats, counts, have = self._done[condition.name]
        need = [i for i in (range(n) if indices is None else indices) if i not in have]
        if need:
            paths = [data.manifest[i].path for i in need]
            clipped: dict[str, int] = {}
            got, errors = extract_files(
                data.feature,
                paths,
                cache=self.cache,
                workers=self.workers,
                progress=self.progress,
                transform=condition_transform(condition),
                clipped=clipped,
            )
            if errors:
                warnings.warn(
                    f"condition {condition.name}: {len(errors)} file(s) could not be changed and "
                    f"are left out of its scores, e.g. {next(iter(errors.items()))}",
                    stacklevel=2,
                )
            for i, path, f in zip(need, paths, got, strict=True):
                feats[i], counts[i] = f, clipped.get(str(path), 0)
                have.add(i)
        return dataclasses.replace(data, features=list(feats), variants=[]), counts

    def score(
        self,
        model: SERModel,
        indices: Sequence[int],
        config: TrainConfig,
        per_utterance: bool = False,
        clean: Sequence[int] | None = None,
        only: Collection[str] | None = None,
    ) -> dict[str, dict]:
        """UA, WA, macro-F1, items and clipping of ``model`` on ``data[indices]`` under each
        condition, predicted as the clean test set is
        (:func:`emovox.train.pipeline.predict_subset`); with ``clean`` (the clean predicted
        class of each of ``indices``) also ``agreement``: the share of items (in %) whose label
        stays the same under the condition. ``only``: score just these condition names.
        """
        clean_of = dict(zip(indices, clean, strict=True)) if clean is not None else None
        out = {}
        for cond in self.conditions:
            if only is not None and cond.name not in only:
                continue
            data, counts = self.dataset(cond, indices)
            ok = [i for i in indices if data.features[i] is not None]
            if not ok:
                continue
            proba = predict_subset(model, data, ok, config, per_utterance=per_utterance)
            m = classification_metrics(data.y[ok], proba.argmax(1), data.classes)
            out[cond.name] = {
                "ua": m["ua"],
                "wa": m["wa"],
                "macro_f1": m["macro_f1"],
                "n_test": m["n"],
                "clipped_files": sum(1 for i in ok if counts[i] > 0),
                "clipped_samples": sum(counts[i] for i in ok),
            }
            if clean_of is not None:
                same = np.asarray([clean_of[i] for i in ok]) == proba.argmax(1)
                out[cond.name]["agreement"] = 100.0 * float(same.mean())
        return out


def summarize_conditions(fold_rows: Sequence[dict], names: Sequence[str]) -> dict[str, dict]:
    """``metrics.json``'s ``conditions``: for ``clean`` and each of ``names``, UA, WA and
    macro-F1 as means over the folds, ``ua_std``, ``ua_delta`` (mean UA change from clean over
    the same folds), clipped files and samples (summed) and the number of folds scored.

    A fold run before a condition was asked for (reused by ``--resume``) has no score for it;
    that condition then covers fewer folds (``n_folds``), and is left out when it covers none.
    """
    ua = np.array([r["ua"] for r in fold_rows], dtype=float)
    out = {
        "clean": {
            "ua": float(ua.mean()),
            "wa": float(np.mean([r["wa"] for r in fold_rows])),
            "macro_f1": float(np.mean([r["macro_f1"] for r in fold_rows])),
            "ua_std": float(ua.std()),
            "ua_delta": 0.0,
            "clipped_files": 0,
            "clipped_samples": 0,
            "n_folds": len(fold_rows),
        }
    }
    for name in names:
        pairs = [(r, r["conditions"][name]) for r in fold_rows if name in r.get("conditions", {})]
        if len(pairs) < len(fold_rows):
            console.log(
                f"condition {name}: scored on {len(pairs)} of {len(fold_rows)} folds (folds "
                f"reused from an earlier run without it are not scored again)"
            )
        if not pairs:
            continue
        c_ua = np.array([c["ua"] for _, c in pairs], dtype=float)
        out[name] = {
            "ua": float(c_ua.mean()),
            "wa": float(np.mean([c["wa"] for _, c in pairs])),
            "macro_f1": float(np.mean([c["macro_f1"] for _, c in pairs])),
            "ua_std": float(c_ua.std()),
            "ua_delta": float(np.mean([c["ua"] - r["ua"] for r, c in pairs])),
            **(
                {"agreement": float(np.mean([c["agreement"] for _, c in pairs]))}
                if all("agreement" in c for _, c in pairs)
                else {}
            ),
            "clipped_files": int(sum(c["clipped_files"] for _, c in pairs)),
            "clipped_samples": int(sum(c["clipped_samples"] for _, c in pairs)),
            "n_folds": len(pairs),
        }
    return out


def condition_report_lines(metrics: dict) -> list[str]:
    """The ``report.md`` section on the test conditions (none when there are none)."""
    conds = metrics.get("conditions")
    if not conds:
        return []
    lines = [
        "",
        "## Test conditions",
        "",
        "Each fold's model scored again on its test files with the audio changed "
        "(SNR against active speech; everything clipped to [-1, 1] at the end).",
        "",
        "| condition | UA | ± | UA change vs clean | labels kept | WA | macro-F1 | clipped files "
        "| folds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, c in conds.items():
        delta = "—" if name == "clean" else f"{c['ua_delta']:+.2f}"
        kept = "—" if "agreement" not in c else f"{c['agreement']:.1f} %"
        lines.append(
            f"| {name} | {c['ua']:.2f} | {c['ua_std']:.2f} | {delta} | {kept} | {c['wa']:.2f} | "
            f"{c['macro_f1']:.2f} | {c['clipped_files']} | {c['n_folds']} |"
        )
    return lines
