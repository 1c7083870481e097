"""The manifest: one row per utterance, the only thing corpora hand to the rest of emovox.

Everything downstream of a manifest is corpus-agnostic. A manifest saves to and loads from CSV or
JSONL; the corpus's own fields (RAVDESS's intensity, statement, ...) travel in ``fields``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from emovox._fs import atomic_write_text

CORE_COLUMNS = ("path", "label", "speaker", "gender", "corpus")


@dataclass(frozen=True)
class Utterance:
    """One recording and what is known about it.

    ``speaker`` is unique within the manifest (corpora prefix it when needed); ``gender`` is
    ``"female"``, ``"male"`` or ``""`` when unknown; ``fields`` holds the corpus's own fields.
    """

    path: str
    label: str
    speaker: str = ""
    gender: str = ""
    corpus: str = ""
    fields: dict[str, str] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        """A core column or a corpus field by name."""
        if name in CORE_COLUMNS:
            return getattr(self, name)
        return self.fields.get(name, default)


class Manifest(Sequence[Utterance]):
    """An ordered, immutable list of :class:`Utterance` rows with I/O and summaries."""

    def __init__(self, rows: Iterable[Utterance] = ()) -> None:
        self._rows: tuple[Utterance, ...] = tuple(rows)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return Manifest(self._rows[index])
        return self._rows[index]

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Utterance]:
        return iter(self._rows)

    def __add__(self, other: Manifest) -> Manifest:
        return Manifest(self._rows + tuple(other))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Manifest) and self._rows == other._rows

    def __repr__(self) -> str:
        return f"Manifest({len(self)} utterances, {len(self.speakers)} speakers)"

    # -- views --------------------------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        """Distinct labels, sorted."""
        return sorted({u.label for u in self._rows})

    @property
    def speakers(self) -> list[str]:
        """Distinct speakers, sorted."""
        return sorted({u.speaker for u in self._rows})

    @property
    def paths(self) -> list[str]:
        return [u.path for u in self._rows]

    def filter(self, keep: Callable[[Utterance], bool]) -> Manifest:
        return Manifest(u for u in self._rows if keep(u))

    def take(self, indices: Iterable[int]) -> Manifest:
        return Manifest(self._rows[i] for i in indices)

    def map(self, fn: Callable[[Utterance], Utterance]) -> Manifest:
        return Manifest(fn(u) for u in self._rows)

    def relabel(self, labels: Sequence[str]) -> Manifest:
        if len(labels) != len(self):
            raise ValueError("one label per utterance is needed")
        return Manifest(replace(u, label=lab) for u, lab in zip(self._rows, labels, strict=True))

    def counts(self, column: str) -> Counter[str]:
        return Counter(u.get(column) for u in self._rows)

    @property
    def field_names(self) -> list[str]:
        names: dict[str, None] = {}
        for u in self._rows:
            for k in u.fields:
                names.setdefault(k, None)
        return list(names)

    # -- I/O -----------------------------------------------------------------------------------
    def to_csv(self, path: str | os.PathLike) -> None:
        """Write CSV: the core columns, then every corpus field seen in any row."""
        buf = io.StringIO()
        cols = list(CORE_COLUMNS) + self.field_names
        w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for u in self._rows:
            w.writerow({c: u.get(c) for c in cols})
        atomic_write_text(path, buf.getvalue())

    def to_jsonl(self, path: str | os.PathLike) -> None:
        """Write one JSON object per line: the core columns and ``fields``."""
        lines = [
            json.dumps({**{c: getattr(u, c) for c in CORE_COLUMNS}, "fields": u.fields})
            for u in self._rows
        ]
        atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))

    def save(self, path: str | os.PathLike) -> None:
        """Save as JSONL when the name ends in ``.jsonl``/``.json``, else as CSV."""
        if str(path).endswith((".jsonl", ".json")):
            self.to_jsonl(path)
        else:
            self.to_csv(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Manifest:
        """Load a manifest written by :meth:`save` (CSV or JSONL, told apart by the extension)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such manifest file")
        if path.suffix in (".jsonl", ".json"):
            rows = []
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    rows.append(_row_from_mapping(obj, obj.get("fields") or {}))
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise ValueError(f"{path}:{n}: not a manifest row ({exc})") from exc
            return cls(rows)
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            missing = {"path", "label"} - set(reader.fieldnames or [])
            if missing:
                raise ValueError(f"{path}: the CSV lacks the column(s) {sorted(missing)}")
            rows = []
            for rec in reader:
                extra = {k: v for k, v in rec.items() if k not in CORE_COLUMNS and k is not None}
                rows.append(_row_from_mapping(rec, extra))
            return cls(rows)


def _row_from_mapping(rec: dict, extra: dict) -> Utterance:
    return Utterance(
        path=str(rec["path"]),
        label=str(rec["label"]),
        speaker=str(rec.get("speaker") or ""),
        gender=str(rec.get("gender") or ""),
        corpus=str(rec.get("corpus") or ""),
        fields={str(k): "" if v is None else str(v) for k, v in extra.items()},
    )
