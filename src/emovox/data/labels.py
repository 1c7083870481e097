"""Label schemes: which classes a model learns, and how a manifest's rows map onto them.

A scheme is named by a string:

- ``emotion``: the eight RAVDESS emotions (``neutral, calm, happy, sad, angry, fearful, disgust,
  surprised``).
- ``gender_emotion``: the reference tutorial's ten classes, ``female_calm`` ... ``male_fearful``
  (female/male x calm, happy, sad, angry, fearful); rows without a known gender are dropped.
- ``arousal``: low / normal / high, read from ``fields["arousal"]`` where a corpus labels arousal
  (BAVED's levels) and from the emotion's place on the circumplex otherwise
  (:data:`emovox.data.taxonomy.AROUSAL`); ``arousal2``: low vs high only (normal rows dropped).
- a list such as ``angry,happy,neutral,sad``: keep those labels only;
  items like ``calm=neutral`` map a source label onto a class (``calm+neutral=low`` maps several);
  a class named after a label also keeps that label's own rows (``calm=neutral`` merges calm
  into neutral) unless an item maps the label elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from emovox.data.manifest import Manifest, Utterance
from emovox.data.taxonomy import AROUSAL, AROUSAL_LEVELS

EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
TUTORIAL_EMOTIONS = ("calm", "happy", "sad", "angry", "fearful")
GENDERS = ("female", "male")


@dataclass(frozen=True)
class LabelScheme:
    """A named, ordered set of classes and a mapping from source labels to them."""

    name: str
    classes: tuple[str, ...]
    mapping: dict[str, str]
    by_gender: bool = False
    field: str = ""
    """When set, a row's class is its value of this field (``fields[field]``) where it has one
    (mapped through ``mapping`` too when the value is a key), else its label's mapping."""

    def target(self, label: str, gender: str = "") -> str | None:
        """The class of a row, or ``None`` when the scheme drops it."""
        cls = self.mapping.get(label)
        if cls is None:
            return None
        if self.by_gender:
            if gender not in GENDERS:
                return None
            cls = f"{gender}_{cls}"
        return cls

    def target_of(self, u: Utterance) -> str | None:
        """The class of a manifest row, or ``None`` when the scheme drops it."""
        value = u.fields.get(self.field) if self.field else None
        if value:
            return value if value in self.classes else None
        return self.target(u.label, u.gender)

    def apply(self, manifest: Manifest) -> tuple[Manifest, int]:
        """Map every row onto the scheme; returns the kept rows and the dropped count. A row
        whose label the scheme changes (``calm=neutral``) keeps its own label in
        ``fields[SOURCE_LABEL]``."""
        kept = []
        for u in manifest:
            cls = self.target_of(u)
            if cls is not None:
                kept.append(relabel(u, cls))
        return Manifest(kept), len(manifest) - len(kept)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "classes": list(self.classes),
            "mapping": dict(self.mapping),
            "by_gender": self.by_gender,
            **({"field": self.field} if self.field else {}),
        }


NO_CLASS = -1
"""The class index of a row without a class (kept for the dimensions head only)."""

SOURCE_LABEL = "source_label"
"""The field holding a row's own label once a label scheme has given it another (or none)."""


def relabel(u: Utterance, label: str) -> Utterance:
    """``u`` with ``label``, its own label kept in ``fields[SOURCE_LABEL]`` when they differ."""
    if label == u.label:
        return u
    source = u.fields.get(SOURCE_LABEL) or u.label
    return replace(u, label=label, fields={**u.fields, SOURCE_LABEL: source})


def resolve_labels(spec: str, available: list[str] | None = None) -> LabelScheme:
    """Turn a scheme name or label list into a :class:`LabelScheme`.

    Args:
        spec: ``emotion``, ``gender_emotion``, ``all`` (every label in ``available``) or a
            comma-separated list of labels and ``src=dst`` / ``a+b=dst`` mappings.
        available: the labels present in the data; unknown names in ``spec`` are an error then.
    """
    spec = spec.strip()
    if spec == "emotion":
        return LabelScheme("emotion", EMOTIONS, {e: e for e in EMOTIONS})
    if spec == "gender_emotion":
        classes = tuple(f"{g}_{e}" for g in GENDERS for e in TUTORIAL_EMOTIONS)
        return LabelScheme(spec, classes, {e: e for e in TUTORIAL_EMOTIONS}, by_gender=True)
    if spec in ("arousal", "arousal2"):
        levels = AROUSAL_LEVELS if spec == "arousal" else ("low", "high")
        mapping = {e: a for e, a in AROUSAL.items() if a in levels}
        return LabelScheme(spec, levels, mapping, field="arousal")
    if spec == "all":
        labels = [a for a in available or [] if a]
        if not labels:
            raise ValueError("--labels all needs the data's labels")
        return LabelScheme("all", tuple(sorted(labels)), {a: a for a in labels})
    mapping: dict[str, str] = {}
    classes: list[str] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if "=" in item:
            src, dst = (s.strip() for s in item.split("=", 1))
            sources = [s.strip() for s in src.split("+") if s.strip()]
        else:
            sources, dst = [item], item
        if not dst or not sources:
            raise ValueError(f"bad label item {item!r} in {spec!r}")
        for s in sources:
            if s in mapping:
                raise ValueError(f"label {s!r} is mapped twice in {spec!r}")
            mapping[s] = dst
        if dst not in classes:
            classes.append(dst)
    if len(classes) < 2:
        raise ValueError(f"a label scheme needs at least two classes, got {classes} from {spec!r}")
    # A class named after a source label keeps that label's own rows unless an item maps the label
    # elsewhere: ``calm=neutral,angry`` puts calm *and* neutral rows in ``neutral``.
    for cls in classes:
        if cls not in mapping and (available is None or cls in available):
            mapping[cls] = cls
    if available is not None:
        unknown = sorted(set(mapping) - set(available))
        if unknown:
            raise ValueError(
                f"label(s) {unknown} do not occur in the data; present: {sorted(available)}"
            )
    return LabelScheme(spec, tuple(classes), mapping)
