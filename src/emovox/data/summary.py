"""``emovox data summary``: what a corpus holds."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from emovox.audio import AudioError, audio_info
from emovox.data.manifest import Manifest


def total_duration(manifest: Manifest) -> tuple[float, list[str]]:
    """Seconds of audio in the manifest (from file headers) and the files that failed."""
    total, bad = 0.0, []
    for u in manifest:
        try:
            info = audio_info(u.path)
            total += info.frames / info.samplerate
        except AudioError as exc:
            bad.append(str(exc))
    return total, bad


def summarize(manifest: Manifest, durations: bool = True) -> dict:
    """Counts per label, speaker, gender and corpus, and the total duration."""
    out = {
        "utterances": len(manifest),
        "labels": dict(sorted(manifest.counts("label").items())),
        "speakers": dict(sorted(manifest.counts("speaker").items())),
        "genders": dict(sorted(manifest.counts("gender").items())),
        "corpora": dict(sorted(manifest.counts("corpus").items())),
    }
    if durations:
        seconds, bad = total_duration(manifest)
        out["duration_seconds"] = seconds
        out["unreadable"] = bad
    return out


def print_summary(
    manifest: Manifest, durations: bool = True, console: Console | None = None
) -> dict:
    """Print the summary as tables; returns it as a dict too."""
    console = console or Console()
    s = summarize(manifest, durations)
    head = f"[bold]{s['utterances']}[/bold] utterances, {len(s['speakers'])} speakers"
    if durations:
        d = s["duration_seconds"]
        head += f", {d:.1f} s ({d / 3600:.2f} h) of audio"
    console.print(head)
    n = max(1, s["utterances"])
    for title, counts in (
        ("label", s["labels"]),
        ("gender", s["genders"]),
        ("corpus", s["corpora"]),
    ):
        t = Table(title=f"per {title}", title_justify="left", min_width=30)
        t.add_column(title)
        t.add_column("n", justify="right")
        t.add_column("%", justify="right")
        for k, v in counts.items():
            t.add_row(k or "(unknown)", str(v), f"{100 * v / n:.1f}")
        console.print(t)
    labels = list(s["labels"])
    if len(s["corpora"]) > 1:  # several corpora: which labels each has (for --labels)
        by_corpus = Counter((u.corpus, u.label) for u in manifest)
        t = Table(title="per corpus and label", title_justify="left")
        t.add_column("corpus")
        t.add_column("speakers", justify="right")
        for lab in labels:
            t.add_column(lab, justify="right")
        for corpus in s["corpora"]:
            n_spk = len({u.speaker for u in manifest if u.corpus == corpus})
            t.add_row(corpus, str(n_spk), *[str(by_corpus[(corpus, lab)]) for lab in labels])
        console.print(t)
    gender = {u.speaker: u.gender for u in manifest}
    per = Counter((u.speaker, u.label) for u in manifest)
    t = Table(title="per speaker", title_justify="left")
    t.add_column("speaker")
    t.add_column("gender")
    t.add_column("n", justify="right")
    for lab in labels:
        t.add_column(lab, justify="right")
    for spk, v in s["speakers"].items():
        t.add_row(
            spk or "(unknown)",
            gender.get(spk) or "?",
            str(v),
            *[str(per[(spk, lab)]) for lab in labels],
        )
    console.print(t)
    if durations and s["unreadable"]:
        console.print(f"[red]{len(s['unreadable'])} unreadable file(s):[/red]")
        for line in s["unreadable"][:20]:
            console.print(f"  {line}")
    return s
