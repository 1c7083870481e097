"""``emovox data summary``: what a corpus holds."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from emovox.audio import AudioError, audio_info
from emovox.data.manifest import Manifest


def audio_facts(manifest: Manifest) -> tuple[float, dict[str, float], Counter, list[str]]:
    """From the file headers: seconds of audio in all, per corpus, the sample rates (files per
    ``"<corpus> <rate> Hz <container>"``) and the files that failed."""
    total, per_corpus, rates, bad = 0.0, Counter(), Counter(), []
    for u in manifest:
        try:
            info = audio_info(u.path)
        except AudioError as exc:
            bad.append(str(exc))
            continue
        seconds = info.frames / info.samplerate
        total += seconds
        per_corpus[u.corpus] += seconds
        rates[f"{u.corpus} {info.samplerate} Hz {info.format}"] += 1
    return total, dict(per_corpus), rates, bad


def total_duration(manifest: Manifest) -> tuple[float, list[str]]:
    """Seconds of audio in the manifest (from file headers) and the files that failed."""
    total, _, _, bad = audio_facts(manifest)
    return total, bad


def summarize(manifest: Manifest, durations: bool = True) -> dict:
    """Counts per label, speaker, gender and corpus, and the total duration."""
    out = {
        "utterances": len(manifest),
        "labels": dict(sorted(manifest.counts("label").items())),
        "arousal": dict(sorted(Counter(u.fields.get("arousal", "") for u in manifest).items())),
        "speakers": dict(sorted(manifest.counts("speaker").items())),
        "genders": dict(sorted(manifest.counts("gender").items())),
        "corpora": dict(sorted(manifest.counts("corpus").items())),
    }
    if not any(out["arousal"]):
        del out["arousal"]  # no corpus labels arousal directly
    if durations:
        seconds, per_corpus, rates, bad = audio_facts(manifest)
        out["duration_seconds"] = seconds
        out["corpus_seconds"] = per_corpus
        out["sample_rates"] = dict(sorted(rates.items()))
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
        ("arousal label", s.get("arousal", {})),
        ("gender", s["genders"]),
        ("corpus", s["corpora"]),
        ("sample rate", s.get("sample_rates", {})),
    ):
        if not counts:
            continue
        t = Table(title=f"per {title}", title_justify="left", min_width=30)
        t.add_column(title)
        t.add_column("n", justify="right")
        t.add_column("%", justify="right")
        for k, v in counts.items():
            t.add_row(k or "(none)", str(v), f"{100 * v / n:.1f}")
        console.print(t)
    if durations and len(s["corpora"]) > 1:
        hours = ", ".join(f"{c} {v / 3600:.2f} h" for c, v in sorted(s["corpus_seconds"].items()))
        console.print(f"audio per corpus: {hours}")
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
