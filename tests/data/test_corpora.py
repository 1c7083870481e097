"""Tests for the corpus modules beyond RAVDESS, the emotion taxonomy, multi-corpus folds and
cross-corpus evaluation. Every file is a short synthetic tone or voice named as the corpus names
its files; no real corpus is needed."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from conftest import synth_manifest, tiny_cli, tiny_recipe, write_tone

from emovox.apps.cli import main
from emovox.data.corpora import (
    CORPORA,
    cremad,
    emodb,
    iemocap,
    ravdess,
    savee,
    scan_corpus,
    tess,
    urdu,
)
from emovox.data.labels import resolve_labels
from emovox.data.manifest import Manifest
from emovox.data.protocols import make_folds
from emovox.data.taxonomy import (
    CANONICAL,
    CORPUS_CODES,
    canonical_label,
    common_labels,
    dropped_by_corpus,
)
from emovox.evaluate.runner import evaluate_cross_corpus

SECONDS = 0.25
FOUR = "angry,happy,neutral,sad"


def tones(root: Path, names: list[str]) -> list[Path]:
    """A 0.25 s tone at each relative path."""
    return [write_tone(root / n, seconds=SECONDS, freq=200 + 20 * i) for i, n in enumerate(names)]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# -- the taxonomy ---------------------------------------------------------------------------------


def test_every_code_maps_onto_a_canonical_label() -> None:
    for corpus, table in CORPUS_CODES.items():
        assert set(table.values()) <= set(CANONICAL), corpus
        assert corpus in CORPORA, corpus
    assert CORPUS_CODES["ravdess"] == ravdess.EMOTIONS
    # EmoDB's letters, as its documentation gives them (German initials)
    expected = "W=angry L=boredom E=disgust A=fearful F=happy T=sad N=neutral"
    assert CORPUS_CODES["emodb"] == dict(pair.split("=") for pair in expected.split())
    assert canonical_label("iemocap", "exc") == "happy"
    assert canonical_label("tess", "ps") == "surprised"
    assert canonical_label("savee", "su") == "surprised"
    with pytest.raises(ValueError, match="unknown emodb emotion code 'Q'"):
        canonical_label("emodb", "Q")
    with pytest.raises(ValueError, match="no emotion codes for corpus 'nope'"):
        canonical_label("nope", "x")


def test_common_labels_and_dropped_counts() -> None:
    from emovox.data.manifest import Utterance

    a = Manifest(
        Utterance(f"a{i}.wav", lab, corpus="ravdess")
        for i, lab in enumerate(["calm", "neutral", "happy", "sad", "angry"])
    )
    b = Manifest(
        Utterance(f"b{i}.wav", lab, corpus="emodb")
        for i, lab in enumerate(["boredom", "boredom", "neutral", "happy", "sad", "angry"])
    )
    assert common_labels([a, b]) == ["neutral", "happy", "sad", "angry"]
    scheme = resolve_labels(FOUR)
    assert dropped_by_corpus(a + b, scheme) == {"emodb": 2, "ravdess": 1}
    kept, dropped = scheme.apply(a + b)
    assert dropped == 3 and len(kept) == 8


# -- one module per corpus ------------------------------------------------------------------------


def test_emodb(tmp_path: Path) -> None:
    root = tmp_path / "emodb"
    tones(root / "wav", ["03a01Fa.wav", "08b02Wb.wav", "10a05Lc.wav", "16b10Tb.wav", "09a04Ea.wav"])
    tones(root / "wav", ["notes.wav", "99a01Fa.wav", "03a01Xa.wav"])
    with pytest.warns(UserWarning, match="skipped 3 file") as record:
        m = scan_corpus("emodb", root)
    assert len([w for w in record if "EmoDB" in str(w.message)]) == 1
    assert "99a01Fa.wav" in str(record[0].message) and "notes.wav" in str(record[0].message)
    rows = {Path(u.path).name: u for u in m}
    u = rows["03a01Fa.wav"]
    assert (u.label, u.speaker, u.gender, u.corpus) == ("happy", "emodb_03", "male", "emodb")
    assert u.fields == {"speaker": "03", "text": "a01", "code": "F", "version": "a"}
    assert (rows["08b02Wb.wav"].label, rows["08b02Wb.wav"].gender) == ("angry", "female")
    assert rows["10a05Lc.wav"].label == "boredom"
    assert rows["16b10Tb.wav"].label == "sad"
    assert rows["09a04Ea.wav"].label == "disgust"
    assert emodb.parse_name("13a02Na")["emotion"] == "neutral"
    assert set(emodb.SPEAKERS) == {"03", "08", "09", "10", "11", "12", "13", "14", "15", "16"}


def test_tess(tmp_path: Path) -> None:
    root = tmp_path / "TESS Toronto emotional speech set data"
    tones(
        root,
        [
            "OAF_angry/OAF_back_angry.wav",
            "OAF_Fear/OAF_dog_fear.wav",
            "YAF_pleasant_surprised/YAF_bite_ps.wav",
            "YAF_neutral/YAF_chair_neutral.wav",
            "OAF_disgust/OAF_wire_disgust.wav",
        ],
    )
    m = scan_corpus("tess", root)
    rows = {Path(u.path).name: u for u in m}
    assert rows["OAF_back_angry.wav"].label == "angry"
    assert rows["OAF_dog_fear.wav"].label == "fearful"
    u = rows["YAF_bite_ps.wav"]
    assert (u.label, u.speaker, u.gender) == ("surprised", "tess_YAF", "female")
    assert u.fields == {"speaker": "YAF", "word": "bite", "code": "ps"}
    assert m.speakers == ["tess_OAF", "tess_YAF"]
    with pytest.raises(ValueError, match="unknown speaker"):
        tess.parse_name("XAF_back_angry.wav")


def test_savee_both_layouts(tmp_path: Path) -> None:
    original = tmp_path / "original" / "AudioData"
    tones(original, ["DC/a01.wav", "DC/sa03.wav", "JE/su15.wav", "KL/n30.wav", "Other/h01.wav"])
    with pytest.warns(UserWarning, match="skipped 1 file") as record:
        m1 = scan_corpus("savee", original)
    assert "Other/h01.wav" in str(record[0].message)
    flat = tmp_path / "flat" / "ALL"
    tones(flat, ["DC_a01.wav", "DC_sa03.wav", "JE_su15.wav", "KL_n30.wav"])
    m2 = scan_corpus("savee", flat)
    for m in (m1, m2):
        got = sorted((u.speaker, u.label, u.fields["code"], u.gender) for u in m)
        assert got == [
            ("savee_DC", "angry", "a", "male"),
            ("savee_DC", "sad", "sa", "male"),
            ("savee_JE", "surprised", "su", "male"),
            ("savee_KL", "neutral", "n", "male"),
        ]
    assert savee.parse_name("JK_d07.wav")["emotion"] == "disgust"
    assert savee.parse_name("f12.wav", folder="JK")["emotion"] == "fearful"
    assert savee.parse_name("JK_h12.wav")["emotion"] == "happy"


def test_cremad_with_and_without_demographics(tmp_path: Path) -> None:
    root = tmp_path / "CREMA-D"
    audio = root / "AudioWAV"
    tones(audio, ["1001_DFA_ANG_XX.wav", "1002_IEO_HAP_HI.wav", "1091_TSI_NEU_LO.wav"])
    tones(audio, ["1001_DFA_BAD_XX.wav"])
    with pytest.warns(UserWarning, match="unknown emotion code BAD"):
        m = scan_corpus("cremad", audio)
    assert [u.gender for u in m] == ["", "", ""]
    u = m[0]
    assert (u.label, u.speaker, u.corpus) == ("angry", "cremad_1001", "cremad")
    assert u.fields == {"actor": "1001", "sentence": "DFA", "code": "ANG", "level": "unspecified"}
    (root / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n"
        "1001,51,Male,Caucasian,Not Hispanic\n"
        "1002,21,Female,Caucasian,Not Hispanic\n"
        "1091,29,Female,Asian,Not Hispanic\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = scan_corpus("cremad", audio)  # VideoDemographics.csv found in the parent folder
        assert [u.gender for u in m] == ["male", "female", "female"]
        assert [u.label for u in m] == ["angry", "happy", "neutral"]
        bad = tmp_path / "bad.csv"
        bad.write_text("Actor,Sex\n1001,Male\n")
        with pytest.raises(
            ValueError, match=r"bad.csv: the CSV lacks the column\(s\) \['ActorID'\]"
        ):
            cremad.scan(audio, demographics=bad)


IEMOCAP_EVAL = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]
C-E2:\tNeutral;\t()
C-E3:\tNeutral;\t()

[10.0100 - 11.3925]\tSes01F_impro01_M001\texc\t[3.5000, 3.0000, 3.0000]

[14.8872 - 18.0175]\tSes01F_impro01_F002\tfru\t[2.0000, 3.5000, 3.5000]

[19.2900 - 20.7875]\tSes01F_impro01_M003\txxx\t[2.5000, 3.0000, 3.0000]

[21.0000 - 22.0000]\tSes01F_impro01_F004\tang\t[1.5000, 4.0000, 4.0000]
"""


def write_iemocap(root: Path) -> None:
    for session, dialog, text in (
        (1, "Ses01F_impro01", IEMOCAP_EVAL),
        (
            2,
            "Ses02M_script01_1b",
            "[1.0 - 2.5]\tSes02M_script01_1b_F000\thap\t[4.0, 3.0, 3.0]\n"
            "[3.0 - 4.5]\tSes02M_script01_1b_M001\tsad\t[1.5, 2.0, 2.0]\n"
            "[5.0 - 6.5]\tSes02M_script01_1b_M002\tneu\t[3.0, 2.0, 2.0]\n",
        ),
    ):
        ev = root / f"Session{session}" / "dialog" / "EmoEvaluation"
        ev.mkdir(parents=True, exist_ok=True)
        (ev / f"{dialog}.txt").write_text(text)
        (ev / "Categorical").mkdir(exist_ok=True)
        (ev / "Categorical" / f"{dialog}_e1_cat.txt").write_text("not a summary file\n")
        wav = root / f"Session{session}" / "sentences" / "wav" / dialog
        for line in text.splitlines():
            f = iemocap.parse_line(line)
            if f and f["utterance"] != "Ses02M_script01_1b_M002":  # one wav is missing
                write_tone(wav / f"{f['utterance']}.wav", seconds=SECONDS)


def test_iemocap(tmp_path: Path) -> None:
    root = tmp_path / "IEMOCAP_full_release"
    write_iemocap(root)
    with pytest.warns(UserWarning, match="skipped 1 IEMOCAP utterance") as record:
        m = scan_corpus("iemocap", root)
    assert "Ses02M_script01_1b_M002.wav" in str(record[0].message)
    got = [(u.fields["utterance"], u.label, u.speaker, u.gender) for u in m]
    assert got == [
        ("Ses01F_impro01_F000", "neutral", "iemocap_Ses01F", "female"),
        ("Ses01F_impro01_M001", "happy", "iemocap_Ses01M", "male"),  # excited merged into happy
        ("Ses01F_impro01_F004", "angry", "iemocap_Ses01F", "female"),
        ("Ses02M_script01_1b_F000", "happy", "iemocap_Ses02F", "female"),
        ("Ses02M_script01_1b_M001", "sad", "iemocap_Ses02M", "male"),
    ]
    u = m[1]
    assert u.fields["code"] == "exc" and u.fields["session"] == "Ses01"
    assert u.fields["dialog"] == "Ses01F_impro01" and u.fields["start"] == "10.0100"
    assert (u.fields["valence"], u.fields["activation"]) == ("3.5000", "3.0000")
    assert m[3].fields["dialog"] == "Ses02M_script01_1b" and m[3].fields["type"] == "scripted"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        everything = iemocap.scan(root, classes="all")
    assert sorted(everything.counts("label").items()) == [
        ("angry", 1),
        ("frustrated", 1),
        ("happy", 2),
        ("neutral", 1),
        ("sad", 1),
    ]
    with pytest.raises(ValueError, match="no IEMOCAP label files"):
        iemocap.scan(tmp_path)


def test_urdu(tmp_path: Path) -> None:
    root = tmp_path / "URDU-Dataset"
    tones(
        root,
        [
            "Angry/SM1_F10_A010.wav",
            "Happy/SF3_F2_H05.wav",
            "Neutral/SM1_F1_N01.wav",
            "Sad/SF3_F7_S10.wav",
            "Other/SM1_F1_X01.wav",
        ],
    )
    with pytest.warns(UserWarning, match="skipped 1 file"):
        m = scan_corpus("urdu", root)
    got = sorted((u.label, u.speaker, u.gender, u.fields["code"]) for u in m)
    assert got == [
        ("angry", "urdu_SM1", "male", "Angry"),
        ("happy", "urdu_SF3", "female", "Happy"),
        ("neutral", "urdu_SM1", "male", "Neutral"),
        ("sad", "urdu_SF3", "female", "Sad"),
    ]
    with pytest.raises(ValueError, match="speaker field"):
        urdu.parse_path("F10_A010.wav", "Angry")


@pytest.mark.parametrize("name", ["emodb", "tess", "savee", "cremad", "iemocap", "urdu"])
def test_an_empty_or_missing_folder_is_a_clear_error(name: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such corpus folder"):
        scan_corpus(name, tmp_path / "nowhere")
    with pytest.raises(ValueError, match=str(tmp_path)):
        scan_corpus(name, tmp_path)


# -- multi-corpus folds ---------------------------------------------------------------------------


def write_voice(path: Path, emotion: str, speaker: int, seed: int) -> Path:
    """A numpy "voice" utterance of ``emotion`` (the prosody of emovox.data.synth)."""
    from emovox.data.synth import PROSODY, numpy_voice

    rng = np.random.default_rng(seed)
    audio = numpy_voice(
        "Der Lappen liegt auf dem Eisschrank", speaker, PROSODY[emotion], 16000, rng
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, 16000, subtype="PCM_16")
    return path


EMODB_LETTERS = {"angry": "W", "happy": "F", "neutral": "N", "sad": "T", "boredom": "L"}


@pytest.fixture(scope="module")
def synth_emodb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An EmoDB-named corpus: speakers 03 (male) and 08 (female) x 4 emotions + 1 boredom."""
    root = tmp_path_factory.mktemp("emodb") / "emodb"
    n = 0
    for spk_index, spk in ((1, "03"), (2, "08")):
        for emotion, letter in EMODB_LETTERS.items():
            prosody = "calm" if emotion == "boredom" else emotion
            write_voice(root / "wav" / f"{spk}a01{letter}a.wav", prosody, spk_index, n)
            n += 1
    return root


@pytest.fixture(scope="module")
def synth_savee(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A flat SAVEE-named corpus: DC and JE x angry, happy, neutral, sad."""
    root = tmp_path_factory.mktemp("savee") / "ALL"
    for spk_index, spk in ((3, "DC"), (5, "JE")):
        for code, emotion in (("a", "angry"), ("h", "happy"), ("n", "neutral"), ("sa", "sad")):
            write_voice(root / f"{spk}_{code}01.wav", emotion, spk_index, spk_index)
    return root


def test_multi_corpus_folds_never_share_speakers(
    synth_corpus: Path, synth_emodb: Path, synth_savee: Path
) -> None:
    m = synth_manifest(synth_corpus) + scan_corpus("emodb", synth_emodb)
    m = m + scan_corpus("savee", synth_savee)
    assert len(m.speakers) == 4 + 2 + 2  # ids are unique across corpora
    folds = make_folds(m, "speakers-kfold", k=4)
    tested = []
    for fold in folds:
        train = {m[i].speaker for i in fold.train}
        test = {m[i].speaker for i in fold.test}
        assert not train & test
        assert set(fold.test_speakers) == test
        tested += sorted(test)
    assert sorted(tested) == m.speakers  # every speaker is tested exactly once


def test_load_specs_keeps_speakers_apart(tmp_path: Path) -> None:
    from emovox.apps.cli.options import load_specs as _load_specs

    for corpus in ("a", "b"):
        tones(tmp_path / corpus, ["happy/spk1_x.wav", "sad/spk1_y.wav"])
    m = _load_specs([f"folder:{tmp_path / 'a'}", f"folder:{tmp_path / 'b'}"])
    assert len(m) == 4
    assert len(m.speakers) == 4  # folder speakers are file paths; equal paths must not merge
    assert all(s.startswith(("folder1:", "folder2:")) for s in m.speakers)


# -- the command line -----------------------------------------------------------------------------


def test_data_summary_of_several_corpora(synth_emodb: Path, synth_savee: Path) -> None:
    result = invoke(
        "data", "summary", f"emodb:{synth_emodb}", f"savee:{synth_savee}", "--no-duration"
    )
    assert result.exit_code == 0, result.output
    assert "18 utterances, 4 speakers" in result.stdout
    assert "per corpus and label" in result.stdout
    result = invoke("data", "summary", f"nope:{synth_emodb}")
    assert result.exit_code == 2
    assert "CORPUS one of" in result.output


def test_evaluate_usage_errors(synth_emodb: Path, synth_savee: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cases = [
        ([], "give the data"),
        (["--test", f"emodb:{synth_emodb}"], "--test needs at least one --train"),
        (["--data", synth_emodb, "--train", f"emodb:{synth_emodb}"], "not both"),
        (["--train", f"emodb:{tmp_path / 'nowhere'}"], "no such file or folder"),
        (
            ["--train", f"savee:{synth_savee}", "--test", f"emodb:{synth_emodb}", "--folds", "1"],
            "--folds does not apply",
        ),
        (
            [
                "--train",
                f"savee:{synth_savee}",
                "--test",
                f"emodb:{synth_emodb}",
                "--labels",
                "angry,boredom",
            ],
            "boredom",
        ),
    ]
    for args, message in cases:
        result = invoke("evaluate", *args, "--out", out, "--quiet", "--no-cache")
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output


@pytest.mark.slow
def test_cross_corpus_evaluation_end_to_end(
    synth_corpus: Path, synth_emodb: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cross"
    args = tiny_cli(
        "evaluate",
        ["--train", f"ravdess:{synth_corpus}", "--test", f"emodb:{synth_emodb}"],
        out,
        *("--labels", FOUR, "--model", "cnn"),
    )
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "cross-corpus ravdess -> emodb" in result.output
    assert "emodb: dropped 2 utterance(s)" in result.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["protocol"] == "cross-corpus"
    assert m["labels"] == FOUR.split(",")
    assert list(m["train_corpora"]) == ["ravdess"] and list(m["test_corpora"]) == ["emodb"]
    assert m["test_corpora"]["emodb"] == {
        "utterances": 10,
        "used": 8,
        "dropped_utterances": 2,
        "speakers": 2,
    }
    assert m["dropped_utterances"] == {"emodb": 2, "ravdess": 0}
    assert len(m["folds"]) == 1 and m["folds"][0]["test_corpora"] == ["emodb"]
    assert m["n_test_predictions"] == 8 and m["n_train_utterances"] == 32
    assert m["sources"]["test"] == [f"emodb:{synth_emodb}"]
    assert 0 <= m["ua"] <= 100
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    report = (out / "report.md").read_text()
    assert "cross-corpus" in report and "| test | emodb | 10 | 8 | 2 | 2 |" in report
    preds = (out / "predictions.csv").read_text().splitlines()
    assert len(preds) == 9 and preds[0].startswith("fold,corpus,path")


@pytest.mark.slow
def test_cross_corpus_api_with_two_test_corpora(
    synth_corpus: Path, synth_emodb: Path, synth_savee: Path, tmp_path: Path
) -> None:
    test = scan_corpus("emodb", synth_emodb) + scan_corpus("savee", synth_savee)
    m = evaluate_cross_corpus(
        synth_manifest(synth_corpus),
        test,
        resolve_labels(FOUR),
        tiny_recipe(epochs=1),
        tmp_path / "out",
        progress=False,
    )
    assert sorted(m["per_test_corpus"]) == ["emodb", "savee"]
    assert m["per_test_corpus"]["emodb"]["n"] == 8 and m["per_test_corpus"]["savee"]["n"] == 8
    assert m["n_test_predictions"] == 16
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["ua"] == m["ua"]


@pytest.mark.slow
def test_multi_corpus_folds_from_the_command_line(
    synth_corpus: Path, synth_savee: Path, tmp_path: Path
) -> None:
    out = tmp_path / "folds"
    corpora = ["--train", f"ravdess:{synth_corpus}", "--train", f"savee:{synth_savee}"]
    result = invoke(
        *tiny_cli(
            "evaluate",
            [*corpora, "--labels", FOUR],
            out,
            *("--protocol", "speakers-kfold:3", "--folds", "1"),
            epochs=1,
        )
    )
    assert result.exit_code == 0, result.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["protocol"] == "speakers-kfold-3"
    assert m["dropped_utterances"] == {"ravdess": 0, "savee": 0}
    fold = m["folds"][0]
    assert fold["n_train"] + fold["n_test"] == 40
    assert not set(fold["test_speakers"]) & set(fold["validation_speakers"])


def test_iemocap_sessions_fold_by_session(tmp_path: Path) -> None:
    root = tmp_path / "IEMOCAP"
    write_iemocap(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = iemocap.scan(root)
    folds = make_folds(m, "sessions")
    assert [f.test_speakers for f in folds] == [
        ("iemocap_Ses01F", "iemocap_Ses01M"),
        ("iemocap_Ses02F", "iemocap_Ses02M"),
    ]
    for f in folds:
        assert not {m[i].speaker for i in f.train} & set(f.test_speakers)
    with pytest.raises(ValueError, match="needs a session"):
        make_folds(m + scan_corpus("savee", _flat_savee(tmp_path)), "sessions")


def _flat_savee(tmp_path: Path) -> Path:
    root = tmp_path / "savee_flat"
    tones(root, ["DC_a01.wav", "JE_h01.wav"])
    return root


def test_train_takes_either_data_or_train(synth_savee: Path, tmp_path: Path) -> None:
    result = invoke(
        "train", "--data", synth_savee, "--train", f"savee:{synth_savee}", "--out", tmp_path / "m"
    )
    assert result.exit_code == 2 and "not both" in result.output
    result = invoke("train", "--out", tmp_path / "m")
    assert result.exit_code == 2 and "--data PATH" in result.output


def test_loco_leaves_each_corpus_out_and_scores_it_on_its_own_classes(
    synth_corpus: Path, synth_emodb: Path, synth_savee: Path, tmp_path: Path
) -> None:
    m = synth_manifest(synth_corpus) + scan_corpus("emodb", synth_emodb)
    m = m + scan_corpus("savee", synth_savee)
    folds = make_folds(m, "loco")
    assert [f.test_corpora for f in folds] == [("emodb",), ("ravdess",), ("savee",)]
    for f in folds:
        test, train = {m[i].corpus for i in f.test}, {m[i].corpus for i in f.train}
        assert test == set(f.test_corpora) and not test & train
    with pytest.raises(ValueError, match="at least two corpora"):
        make_folds(synth_manifest(synth_corpus), "loco")

    out = tmp_path / "loco"
    corpora = [f"ravdess:{synth_corpus}", f"emodb:{synth_emodb}", f"savee:{synth_savee}"]
    result = invoke(
        *tiny_cli(
            "evaluate",
            [a for c in corpora for a in ("--train", c)],
            out,
            *("--labels", "angry,happy,neutral,sad,boredom", "--protocol", "loco"),
            *("--train-param", "speaker_norm=true"),
            epochs=1,
        )
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["protocol"] == "loco" and len(metrics["folds"]) == 3
    per = metrics["per_test_corpus"]
    assert set(per) == {"emodb", "ravdess", "savee"}
    # EmoDB has boredom, the others not: each is scored on the classes it has, and on the four
    assert per["emodb"]["own_classes"]["classes"] == ["angry", "happy", "neutral", "sad", "boredom"]
    assert per["savee"]["own_classes"]["classes"] == ["angry", "happy", "neutral", "sad"]
    for corpus, scores in per.items():
        assert scores["four_classes"]["classes"] == ["angry", "happy", "neutral", "sad"], corpus
        assert 0 <= scores["four_classes"]["ua"] <= 100
    for fold in metrics["folds"]:  # validation speakers come from the training corpora only
        assert not set(fold["validation_speakers"]) & set(fold["test_speakers"])
    assert "savee: UA" in result.output and "4 classes" in result.output
    assert "| savee |" in (out / "report.md").read_text()
    # speaker-normalised: each test corpus also scored speaker-adapted, on the same subsets
    for corpus, scores in per.items():
        adapted = scores["speaker_adapted"]
        assert adapted["four_classes"]["classes"] == ["angry", "happy", "neutral", "sad"], corpus
        assert adapted["own_classes"]["classes"] == scores["own_classes"]["classes"]
        assert adapted["n"] == scores["n"]
    with (out / "fold_1" / "predictions.csv").open() as f:
        header = next(csv.reader(f))
    assert "adapted_predicted" in header and "adapted_p_boredom" in header
    report = (out / "report.md").read_text()
    assert "speaker-adapted: UA own classes" in report
    assert "allows (guarded).\n\n| test corpus |" in report  # the note, then the table
    assert "speaker-adapted UA" in result.output
