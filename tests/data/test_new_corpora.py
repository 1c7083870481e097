"""The nEMO, ASED and BAVED recipes, TESS's OA_ file, the arousal target and the real corpora.

Every file is a short tone named exactly as its corpus names it; the last test reads the real
corpora from ``../corpora`` (unpacked by ``benchmarks/unpack_corpora.py``) and skips without
them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_tone

from emovox.data.corpora import CORPORA, ased, baved, scan_corpus, tess
from emovox.data.labels import resolve_labels
from emovox.data.manifest import Manifest
from emovox.data.taxonomy import AROUSAL, AROUSAL_LEVELS, CANONICAL, dropped_by_corpus

REPO = Path(__file__).resolve().parents[2]
REAL = REPO.parent / "corpora"


def tones(root: Path, names: list[str]) -> None:
    for i, n in enumerate(names):
        write_tone(root / n, seconds=0.25, freq=200 + 20 * i)


NEMO_TSV = (
    "file_id\temotion\traw_text\tnormalized_text\tspeaker_id\tgender\tage\n"
    "WR0_surprised_64.wav\tsurprised\tUcho wykrywa.\tucho wykrywa\t        WR0\tmale\t23\n"
    "EB0_neutral_13.wav\tneutral\tInteresuje mnie.\tinteresuje mnie\t        EB0\tfemale\t27\n"
    "EB0_anger_1.wav\tanger\tKot.\tkot\t        EB0\tfemale\t27\n"
    "KS0_sadness_2.wav\tsadness\tPies.\tpies\t        KS0\tmale\t23\n"
)


def test_nemo_reads_its_tsv(tmp_path: Path) -> None:
    root = tmp_path / "nEMO"
    tones(root / "samples", ["WR0_surprised_64.wav", "EB0_neutral_13.wav", "EB0_anger_1.wav"])
    (root / "data.tsv").write_text(NEMO_TSV, encoding="utf-8")
    with pytest.warns(UserWarning, match=r"(?s)skipped 1 file\(s\).*KS0_sadness_2.wav"):
        m = scan_corpus("nemo", root)
    rows = {Path(u.path).name: u for u in m}
    u = rows["WR0_surprised_64.wav"]
    assert (u.label, u.speaker, u.gender, u.corpus) == ("surprised", "nemo_WR0", "male", "nemo")
    assert u.fields == {"code": "surprised", "text": "ucho wykrywa", "age": "23"}
    assert rows["EB0_anger_1.wav"].label == "angry"
    assert m.speakers == ["nemo_EB0", "nemo_WR0"]  # the padding of speaker_id is gone
    assert len(scan_corpus("nemo", root / "samples")) == 3  # the samples folder works too
    (root / "data.tsv").unlink()
    with pytest.raises(FileNotFoundError, match=r"data\.tsv"):
        scan_corpus("nemo", root)


def test_ased_names_and_quirks(tmp_path: Path) -> None:
    root = tmp_path / "ASED_V1"
    names = [
        "01Neutral/n1-01-01-01-01.wav",
        "02Fearful/f2-02-02-02-13.wav",
        "03Happy/h3-05-01-01-07.wav",
        "04Sad/S4-04-02-01-29.wav",  # the distribution's one upper-case letter
        "05Angry/a5-03-01-02-50.wav",
        "05Angry/a3-03-01-02-50.wav",  # anger in the happy folder's number: not an ASED name
    ]
    tones(root, names)
    with pytest.warns(UserWarning, match=r"(?s)skipped 1 file\(s\).*a3-03-01-02-50.*folder 5"):
        m = scan_corpus("ased", root)
    rows = {Path(u.path).name: u for u in m}
    u = rows["a5-03-01-02-50.wav"]
    assert (u.label, u.speaker, u.gender) == ("angry", "ased_50", "male")
    assert u.fields == {"code": "a", "sentence": "03", "repetition": "01", "speaker": "50"}
    assert rows["S4-04-02-01-29.wav"].label == "sad"
    assert rows["S4-04-02-01-29.wav"].gender == "female"
    assert [rows[n.split("/")[1]].label for n in names[:3]] == ["neutral", "fearful", "happy"]
    with pytest.raises(ValueError, match="gender 03"):
        ased.parse_name("n1-01-01-03-01.wav")


def test_baved_levels_are_arousal_not_categories(tmp_path: Path) -> None:
    root = tmp_path / "BAVED"
    tones(root, ["0/0-m-21-0-1-105.wav", "2/3-f-21-2-0-7.wav", "6/3-f-21-6-2-8.wav"])
    tones(root, ["4/9-m-20-4-2-1.wav", "4/bad-name.wav"])
    (root / "speakers_info.json").write_text(
        json.dumps({"0": {"age": 21, "gender": "m"}, "9": {"age": 20, "gender": "f"}})
    )
    with pytest.warns(UserWarning, match=r"(?s)skipped 1 file\(s\).*bad-name"):
        m = scan_corpus("baved", root)
    rows = {Path(u.path).name: u for u in m}
    u = rows["3-f-21-2-0-7.wav"]
    assert (u.label, u.speaker, u.gender) == ("", "baved_3", "female")
    assert u.fields["arousal"] == "low" and u.fields["word"] == "2" and u.fields["code"] == "0"
    assert rows["0-m-21-0-1-105.wav"].fields["arousal"] == "normal"
    assert rows["3-f-21-6-2-8.wav"].fields["arousal"] == "high"
    # speakers_info.json decides the gender where it knows the speaker
    assert rows["9-m-20-4-2-1.wav"].gender == "female"
    # every categorical scheme leaves BAVED out; the arousal scheme keeps it
    emotions = resolve_labels("angry,happy,neutral,sad")
    assert len(emotions.apply(m)[0]) == 0 and dropped_by_corpus(m, emotions) == {"baved": 4}
    kept, dropped = resolve_labels("arousal").apply(m)
    assert dropped == 0 and sorted(kept.labels) == ["high", "low", "normal"]
    kept, dropped = resolve_labels("arousal2").apply(m)
    assert dropped == 1 and sorted(kept.labels) == ["high", "low"]
    with pytest.raises(ValueError, match="level"):
        baved.parse_name("0-m-21-0-3-105.wav")


def test_the_arousal_scheme_places_categories_on_the_circumplex(tmp_path: Path) -> None:
    from emovox.data.manifest import Utterance

    rows = [Utterance(f"{e}.wav", e, "s", "", "x") for e in CANONICAL]
    scheme = resolve_labels("arousal")
    assert scheme.classes == AROUSAL_LEVELS and scheme.field == "arousal"
    kept, dropped = scheme.apply(Manifest(rows))
    assert dropped == 1  # "other" has no arousal
    got = {Path(u.path).stem: u.label for u in kept}
    assert got["angry"] == "high" and got["sad"] == "low" and got["neutral"] == "normal"
    assert got == {e: a for e, a in AROUSAL.items()}
    assert set(AROUSAL) <= set(CANONICAL)
    assert scheme.to_dict()["field"] == "arousal"


def test_tess_keeps_the_oa_file_of_the_distribution(tmp_path: Path) -> None:
    root = tmp_path / "tess"
    tones(root, ["OAF_neutral/OA_bite_neutral.wav", "OAF_neutral/OAF_back_neutral.wav"])
    m = scan_corpus("tess", root)
    assert len(m) == 2 and m.speakers == ["tess_OAF"]
    assert tess.parse_name("OA_bite_neutral.wav")["speaker"] == "OAF"


def test_every_new_recipe_is_registered() -> None:
    assert {"nemo", "ased", "baved"} <= set(CORPORA)


SIZES = {"emodb": 535, "tess": 2800, "nemo": 4481, "ased": 2474, "baved": 1935}


@pytest.mark.skipif(not REAL.is_dir(), reason="the real corpora are not unpacked in ../corpora")
@pytest.mark.parametrize("name", sorted(SIZES))
def test_the_real_corpus_reads_whole(name: str, recwarn) -> None:
    """Every file of the real corpus becomes a row, none is skipped (run where ../corpora is)."""
    if not (REAL / name).is_dir():
        pytest.skip(f"{name} is not unpacked")
    m = scan_corpus(name, REAL / name)
    assert len(m) == SIZES[name]
    assert not [w for w in recwarn if "skipped" in str(w.message)]
    if name == "baved":
        assert {u.fields["arousal"] for u in m} == {"low", "normal", "high"}
    else:
        assert "" not in m.labels


def test_every_corpus_recipe_states_its_language_licence_and_citation() -> None:
    from emovox.data.corpora import CORPORA, corpus_facts

    for name in CORPORA:
        facts = corpus_facts(name)
        if name in ("folder", "csv"):  # a user's own data: nothing to state
            assert set(facts.values()) == {"unknown"}
            continue
        assert all(v and v != "unknown" for v in facts.values()), name
    assert corpus_facts("nemo")["language"] == "Polish"
    assert corpus_facts("ravdess")["licence"] == "CC BY-NC-SA 4.0"
