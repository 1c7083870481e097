"""Corpora -> Manifest, manifest I/O, label schemes and evaluation protocols."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import EMOTION_FREQS, peak_frequency, write_tone

from emovox.audio import load_audio
from emovox.data.corpora import CORPORA, csv_corpus, folder, ravdess, scan_corpus
from emovox.data.labels import EMOTIONS, TUTORIAL_EMOTIONS, LabelScheme, resolve_labels
from emovox.data.manifest import Manifest, Utterance
from emovox.data.protocols import (
    EMOBOX_RAVDESS_FOLDS,
    SpeakerLeakWarning,
    make_folds,
    validation_split,
)

# == RAVDESS names ================================================================================


def test_parse_name_all_fields():
    f = ravdess.parse_name("03-01-06-02-01-02-12.wav")
    assert f == {
        "modality": "audio-only",
        "vocal_channel": "speech",
        "emotion": "fearful",
        "intensity": "strong",
        "statement": "01",
        "repetition": "02",
        "actor": "12",
        "gender": "female",
    }
    g = ravdess.parse_name("01-02-08-01-02-01-07")  # no extension, audio-video song
    assert (g["modality"], g["vocal_channel"], g["emotion"], g["intensity"]) == (
        "audio-video",
        "song",
        "surprised",
        "normal",
    )
    assert (g["statement"], g["repetition"], g["actor"], g["gender"]) == ("02", "01", "07", "male")
    assert ravdess.parse_name("02-01-01-01-01-01-24.FLAC")["modality"] == "video-only"


@pytest.mark.parametrize("code", sorted(ravdess.EMOTIONS))
def test_parse_name_every_emotion(code):
    assert ravdess.parse_name(f"03-01-{code}-01-01-01-01.wav")["emotion"] == ravdess.EMOTIONS[code]


@pytest.mark.parametrize("actor", range(1, 25))
def test_gender_from_actor_parity(actor):
    gender = ravdess.parse_name(f"03-01-01-01-01-01-{actor:02d}.wav")["gender"]
    assert gender == ("male" if actor % 2 == 1 else "female")


@pytest.mark.parametrize(
    ("name", "part"),
    [
        ("04-01-01-01-01-01-01.wav", "modality"),
        ("03-03-01-01-01-01-01.wav", "vocal channel"),
        ("03-01-09-01-01-01-01.wav", "emotion"),
        ("03-01-00-01-01-01-01.wav", "emotion"),
        ("03-01-01-03-01-01-01.wav", "intensity"),
        ("03-01-01-01-03-01-01.wav", "statement"),
        ("03-01-01-01-01-03-01.wav", "repetition"),
        ("03-01-01-01-01-01-25.wav", "actor"),
        ("03-01-01-01-01-01-00.wav", "actor"),
    ],
)
def test_parse_name_errors_name_the_part(name, part):
    with pytest.raises(ValueError, match=part) as info:
        ravdess.parse_name(name)
    assert name in str(info.value)


@pytest.mark.parametrize(
    "name",
    [
        "foo.wav",
        "03-01-01-01-01-01.wav",
        "03-01-01-01-01-01-01-01.wav",
        "3-1-1-1-1-1-1.wav",
        "03_01_01_01_01_01_01.wav",
        "03-01-01-01-01-01-01.mp3",
    ],
)
def test_parse_name_rejects_malformed(name):
    with pytest.raises(ValueError, match="MM-VV-EE-II-SS-RR-AA"):
        ravdess.parse_name(name)


# == RAVDESS scan =================================================================================


def _scan_quietly(root, **kw) -> Manifest:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ravdess.scan(root, **kw)


def test_scan_speech_by_default(fake_ravdess):
    with pytest.warns(UserWarning):
        m = ravdess.scan(fake_ravdess.root)
    assert len(m) == len(fake_ravdess.speech) == 12
    assert sorted(m.paths) == sorted(str(p) for p in fake_ravdess.speech)
    assert {u.fields["vocal_channel"] for u in m} == {"speech"}
    assert m.speakers == ["Actor_01", "Actor_02"]
    assert m.counts("speaker") == Counter({"Actor_01": 6, "Actor_02": 6})
    assert m.labels == sorted(["neutral", "calm", "happy", "sad", "angry", "fearful"])
    assert {u.corpus for u in m} == {"ravdess"}


def test_scan_reads_wav_and_flac_and_genders(fake_ravdess):
    m = _scan_quietly(fake_ravdess.root)
    suffixes = Counter(Path(u.path).suffix for u in m)
    assert suffixes == Counter({".wav": 6, ".flac": 6})
    for u in m:
        assert u.gender == ("male" if u.speaker == "Actor_01" else "female")
        assert u.speaker == f"Actor_{u.fields['actor']}"
        assert "gender" not in u.fields  # gender is a core column, not a field
        assert u.label == u.fields["emotion"]
        assert Path(u.path).is_file()


def test_scanned_files_load_as_16k_mono(fake_ravdess):
    """Every row's file reads (the stereo one and the 48 kHz one included) as its emotion's tone."""
    code_of = {v: k for k, v in ravdess.EMOTIONS.items()}
    for u in _scan_quietly(fake_ravdess.root):
        x = load_audio(u.path)
        assert x.shape == (8000,), u.path
        assert peak_frequency(x, 16000) == pytest.approx(EMOTION_FREQS[code_of[u.label]], abs=3)


def test_scan_channels(fake_ravdess):
    every = _scan_quietly(fake_ravdess.root, channel="all")
    assert len(every) == 13
    assert Counter(u.fields["vocal_channel"] for u in every) == Counter(speech=12, song=1)
    song = _scan_quietly(fake_ravdess.root, channel="song")
    assert song.paths == [str(p) for p in fake_ravdess.song]
    with pytest.raises(ValueError, match="channel"):
        ravdess.scan(fake_ravdess.root, channel="both")


def test_scan_warns_once_listing_every_bad_file(fake_ravdess):
    with pytest.warns(UserWarning) as record:
        ravdess.scan(fake_ravdess.root)
    assert len(record) == 1
    msg = str(record[0].message)
    assert "2 file(s)" in msg
    for bad in fake_ravdess.bad:
        assert bad.name in msg
    assert "emotion code 09" in msg  # the reason is given too
    assert "README" not in msg  # non-audio files are not even considered


def test_scan_without_bad_files_does_not_warn(fake_ravdess):
    for p in fake_ravdess.bad:
        p.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(ravdess.scan(fake_ravdess.root)) == 12


def test_scan_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError):
        ravdess.scan(tmp_path / "nowhere")


def test_scan_corpus_registry(fake_ravdess):
    assert set(CORPORA) >= {"ravdess", "folder", "csv"}
    with pytest.warns(UserWarning, match="foo.wav"):
        via_registry = scan_corpus("ravdess", fake_ravdess.root, channel="all")
    assert via_registry == _scan_quietly(fake_ravdess.root, channel="all")
    with pytest.raises(ValueError, match="unknown corpus"):
        scan_corpus("timit", fake_ravdess.root)


# == folder corpus ================================================================================


def test_folder_corpus(tmp_path):
    root = tmp_path / "mine"
    write_tone(root / "angry" / "spk1_a.wav", seconds=0.2)
    write_tone(root / "angry" / "deeper" / "spk2_b.flac", seconds=0.2, fmt="FLAC")
    write_tone(root / "happy" / "spk1_c.WAV", seconds=0.2)
    (root / "happy" / "notes.txt").write_text("ignored")
    write_tone(root / "loose_file.wav", seconds=0.2)  # not under a label folder: ignored
    m = folder.scan(root)
    assert len(m) == 3
    assert m.labels == ["angry", "happy"]
    assert m.counts("label") == Counter(angry=2, happy=1)
    # without a separator every file is its own speaker
    assert len(m.speakers) == 3
    assert {u.corpus for u in m} == {"folder"}
    by_sep = folder.scan(root, speaker_sep="_")
    assert by_sep.speakers == ["spk1", "spk2"]
    assert by_sep.counts("speaker") == Counter(spk1=2, spk2=1)
    assert scan_corpus("folder", root, speaker_sep="_") == by_sep


def test_folder_corpus_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        folder.scan(tmp_path / "nowhere")
    (tmp_path / "empty" / "angry").mkdir(parents=True)
    with pytest.raises(ValueError, match="no audio"):
        folder.scan(tmp_path / "empty")


# == csv corpus ===================================================================================


def test_csv_corpus_relative_paths_and_speaker(tmp_path):
    base = tmp_path / "data"
    write_tone(base / "clips" / "a.wav", seconds=0.2)
    write_tone(base / "clips" / "b.wav", seconds=0.2)
    absolute = write_tone(tmp_path / "elsewhere" / "c.wav", seconds=0.2)
    csv_path = base / "list.csv"
    csv_path.write_text(
        "path,label,speaker,gender,session\n"
        "clips/a.wav,angry,s1,Female,1\n"
        f"clips/b.wav, happy ,s2,male,2\n"
        f"{absolute},sad,,,3\n"
    )
    m = csv_corpus.scan(csv_path)
    expected = [base / "clips" / "a.wav", base / "clips" / "b.wav", absolute]
    assert [Path(p) for p in m.paths] == expected
    assert all(Path(p).is_file() for p in m.paths)
    assert [u.label for u in m] == ["angry", "happy", "sad"]
    assert [u.speaker for u in m][:2] == ["s1", "s2"]
    assert m[2].speaker  # no speaker: the file stands for its own speaker
    assert [u.gender for u in m] == ["female", "male", ""]
    assert [u.fields for u in m] == [{"session": "1"}, {"session": "2"}, {"session": "3"}]
    assert {u.corpus for u in m} == {"csv"}
    # a folder holding exactly one CSV works too, and is resolved the same way
    assert csv_corpus.scan(base) == m


def test_csv_corpus_without_speaker_column(tmp_path):
    (tmp_path / "list.csv").write_text("path,label\nx.wav,calm\ny.wav,sad\n")
    m = csv_corpus.scan(tmp_path / "list.csv")
    assert m.paths == [str(tmp_path / "x.wav"), str(tmp_path / "y.wav")]
    assert len(m.speakers) == 2  # one speaker per file
    assert all(u.gender == "" for u in m)


def test_csv_corpus_errors(tmp_path):
    (tmp_path / "nolabel.csv").write_text("path,speaker\nx.wav,s1\n")
    with pytest.raises(ValueError, match="label"):
        csv_corpus.scan(tmp_path / "nolabel.csv")
    (tmp_path / "nopath.csv").write_text("file,label\nx.wav,sad\n")
    with pytest.raises(ValueError, match="path"):
        csv_corpus.scan(tmp_path / "nopath.csv")
    with pytest.raises(ValueError, match=r"one \.csv"):
        csv_corpus.scan(tmp_path)  # two CSVs in the folder
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.csv").write_text("path,label\nx.wav,\n")
    with pytest.raises(ValueError, match="empty path or label"):
        csv_corpus.scan(tmp_path / "sub")
    with pytest.raises(FileNotFoundError):
        csv_corpus.scan(tmp_path / "missing.csv")


# == Manifest I/O =================================================================================


def _utt(i: int, label: str = "happy", speaker: str = "s1", gender: str = "female", **fields):
    return Utterance(f"/data/{i}.wav", label, speaker, gender, "test", dict(fields))


@pytest.mark.parametrize("name", ["m.csv", "m.jsonl", "m.json", "m.txt"])
def test_manifest_round_trip(tmp_path, name, fake_ravdess):
    m = _scan_quietly(fake_ravdess.root, channel="all")
    assert m.field_names  # RAVDESS fields travel along
    m.save(tmp_path / name)
    back = Manifest.load(tmp_path / name)
    assert back == m
    assert back[0].fields == m[0].fields
    assert back[0].fields["statement"] == "01"  # codes stay strings (no "1")


@pytest.mark.parametrize("name", ["m.csv", "m.jsonl"])
def test_manifest_round_trip_odd_values(tmp_path, name):
    m = Manifest(
        [
            _utt(1, label="sad", speaker="a,b", gender="", note='say "hi", then\nleave'),
            _utt(2, label="angry", speaker="ü", gender="male", note="plain"),
        ]
    )
    m.save(tmp_path / name)
    assert Manifest.load(tmp_path / name) == m


def test_manifest_csv_columns(tmp_path):
    m = Manifest([_utt(1, take="1", mic="x")])
    m.to_csv(tmp_path / "m.csv")
    header = (tmp_path / "m.csv").read_text().splitlines()[0]
    assert header == "path,label,speaker,gender,corpus,take,mic"


def test_manifest_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        Manifest.load(tmp_path / "none.csv")
    (tmp_path / "bad.csv").write_text("file,emotion\nx.wav,sad\n")
    with pytest.raises(ValueError, match="path"):
        Manifest.load(tmp_path / "bad.csv")
    (tmp_path / "bad.jsonl").write_text('{"path": "x.wav", "label": "sad"}\n{"path": \n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
        Manifest.load(tmp_path / "bad.jsonl")


def test_manifest_views():
    m = Manifest([_utt(1, "sad", "b"), _utt(2, "happy", "a"), _utt(3, "sad", "a")])
    assert m.labels == ["happy", "sad"]
    assert m.speakers == ["a", "b"]
    assert len(m[1:]) == 2 and isinstance(m[1:], Manifest)
    assert m.take([2, 0]).paths == ["/data/3.wav", "/data/1.wav"]
    assert len(m.filter(lambda u: u.speaker == "a")) == 2
    assert [u.label for u in m.relabel(["x", "y", "z"])] == ["x", "y", "z"]
    with pytest.raises(ValueError):
        m.relabel(["x"])
    assert len(m + m) == 6


# == label schemes ================================================================================


def _labelled(rows):
    return Manifest(_utt(i, label, f"s{i}", gender) for i, (label, gender) in enumerate(rows))


def test_emotion_scheme():
    s = resolve_labels("emotion")
    assert s.classes == EMOTIONS and len(s.classes) == 8
    m = _labelled([(e, "") for e in EMOTIONS] + [("bored", "male")])
    kept, dropped = s.apply(m)
    assert [u.label for u in kept] == list(EMOTIONS)
    assert dropped == 1


def test_gender_emotion_scheme():
    s = resolve_labels("gender_emotion")
    assert len(s.classes) == 10
    assert set(s.classes) == {f"{g}_{e}" for g in ("female", "male") for e in TUTORIAL_EMOTIONS}
    assert set(TUTORIAL_EMOTIONS) == {"calm", "happy", "sad", "angry", "fearful"}
    m = _labelled(
        [
            ("calm", "female"),
            ("angry", "male"),
            ("fearful", "male"),
            ("neutral", "female"),  # not a tutorial emotion: dropped
            ("surprised", "male"),  # dropped
            ("happy", ""),  # unknown gender: dropped
            ("sad", "other"),  # dropped
        ]
    )
    kept, dropped = s.apply(m)
    assert [u.label for u in kept] == ["female_calm", "male_angry", "male_fearful"]
    assert dropped == 4
    assert all(u.label in s.classes for u in kept)
    assert s.target("sad", "female") == "female_sad"
    assert s.target("sad", "") is None


def test_subset_scheme():
    s = resolve_labels("angry,happy,neutral,sad", available=list(EMOTIONS))
    assert s.classes == ("angry", "happy", "neutral", "sad")
    m = _labelled([(e, "") for e in EMOTIONS])
    kept, dropped = s.apply(m)
    assert sorted(u.label for u in kept) == ["angry", "happy", "neutral", "sad"]
    assert dropped == 4


def test_mapping_scheme_merges_calm_into_neutral():
    s = resolve_labels("calm=neutral,angry,happy,sad", available=list(EMOTIONS))
    assert s.classes == ("neutral", "angry", "happy", "sad")
    m = _labelled([(e, "") for e in EMOTIONS])
    kept, dropped = s.apply(m)
    got = Counter(u.label for u in kept)
    assert got == Counter(neutral=2, angry=1, happy=1, sad=1)  # calm AND neutral rows
    assert dropped == 3  # fearful, disgust, surprised
    assert s.target("calm") == s.target("neutral") == "neutral"
    assert s.target("fearful") is None
    wanted = ("neutral", "calm", "angry", "happy", "sad")
    assert [u.path for u in kept] == [u.path for u in m if u.label in wanted]
    assert m[0].label == "neutral"  # apply does not change the input manifest


def test_plus_mapping_scheme():
    s = resolve_labels("calm+neutral=low, angry+happy = high", available=list(EMOTIONS))
    assert s.classes == ("low", "high")
    assert s.mapping == {"calm": "low", "neutral": "low", "angry": "high", "happy": "high"}
    kept, dropped = s.apply(_labelled([(e, "") for e in EMOTIONS]))
    assert Counter(u.label for u in kept) == Counter(low=2, high=2)
    assert dropped == 4


def test_swap_mapping_is_not_overridden():
    s = resolve_labels("neutral=calm,calm=neutral")
    assert s.target("neutral") == "calm" and s.target("calm") == "neutral"


def test_all_scheme():
    s = resolve_labels("all", available=["b", "a", "c"])
    assert s.classes == ("a", "b", "c")
    with pytest.raises(ValueError):
        resolve_labels("all")


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("angry,happy,bored", "bored"),
        ("calm=neutral,angry,shouting", "shouting"),
        ("calm+yelling=loud,sad", "yelling"),
    ],
)
def test_unknown_labels_are_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        resolve_labels(spec, available=list(EMOTIONS))


@pytest.mark.parametrize("spec", ["angry", "angry,", "calm=neutral", "calm+sad=low", "a=x,b=x", ""])
def test_one_class_schemes_are_errors(spec):
    with pytest.raises(ValueError, match="two classes"):
        resolve_labels(spec)


@pytest.mark.parametrize("spec", ["angry,angry=x,sad", "=x,sad", "a=,b"])
def test_malformed_schemes_are_errors(spec):
    with pytest.raises(ValueError):
        resolve_labels(spec)


def test_scheme_to_dict():
    s = resolve_labels("gender_emotion")
    d = s.to_dict()
    assert d["by_gender"] is True and len(d["classes"]) == 10
    assert LabelScheme(d["name"], tuple(d["classes"]), d["mapping"], d["by_gender"]) == s


# == protocols ====================================================================================


def _ravdess_manifest(actors=range(1, 25), per_actor: int = 4) -> Manifest:
    emotions = ["neutral", "calm", "happy", "sad", "angry"]
    rows = []
    for a in actors:
        for j in range(per_actor):
            rows.append(
                Utterance(
                    path=f"/r/Actor_{a:02d}/{j}.wav",
                    label=emotions[j % len(emotions)],
                    speaker=f"Actor_{a:02d}",
                    gender="male" if a % 2 else "female",
                    corpus="ravdess",
                )
            )
    return Manifest(rows)


def _check_fold_partition(m: Manifest, folds) -> None:
    seen_test = []
    for f in folds:
        assert set(f.train).isdisjoint(f.test)
        assert sorted(f.train + f.test) == list(range(len(m)))
        train_spk = {m[i].speaker for i in f.train}
        test_spk = {m[i].speaker for i in f.test}
        assert train_spk.isdisjoint(test_spk)
        assert test_spk == set(f.test_speakers)
        seen_test.extend(f.test)
    # every utterance is tested exactly once
    assert sorted(seen_test) == list(range(len(m)))


def test_emobox_folds():
    m = _ravdess_manifest()
    folds = make_folds(m, "emobox")
    assert len(folds) == 6
    assert [f.index for f in folds] == [1, 2, 3, 4, 5, 6]
    for f, actors in zip(folds, EMOBOX_RAVDESS_FOLDS, strict=True):
        assert f.test_speakers == tuple(sorted(f"Actor_{a:02d}" for a in actors))
        assert len(f.test) == 4 * len(actors)
    _check_fold_partition(m, folds)
    all_test = [s for f in folds for s in f.test_speakers]
    assert sorted(all_test) == m.speakers  # every actor is tested exactly once
    # the published split itself: the first fold tests actors 1, 11, 20, 21
    assert folds[0].test_speakers == ("Actor_01", "Actor_11", "Actor_20", "Actor_21")


def test_emobox_needs_ravdess():
    m = Manifest(_utt(i, speaker=f"s{i}") for i in range(4))
    with pytest.raises(ValueError, match="RAVDESS"):
        make_folds(m, "emobox")


def test_emobox_with_other_corpora_keeps_them_on_the_training_side():
    extra = [
        Utterance(
            f"/e/{i}.wav", "angry", "Actor_01" if i == 0 else f"emodb_{i % 3}", "male", "emodb"
        )
        for i in range(9)
    ]  # one speaker named like a RAVDESS actor: still never a test speaker
    m = Manifest([*_ravdess_manifest(), *extra])
    folds = make_folds(m, "emobox")
    assert len(folds) == 6
    others = {i for i, u in enumerate(m) if u.corpus == "emodb"}
    for f, actors in zip(folds, EMOBOX_RAVDESS_FOLDS, strict=True):
        assert others <= set(f.train) and not others & set(f.test)
        assert {m[i].corpus for i in f.test} == {"ravdess"} and len(f.test) == 4 * len(actors)
    assert sorted(i for f in folds for i in f.test) == sorted(set(range(len(m))) - others)


def test_emobox_missing_actors_is_an_error():
    sixth = EMOBOX_RAVDESS_FOLDS[5]
    m = _ravdess_manifest(actors=[a for a in range(1, 25) if a not in sixth])
    with pytest.raises(ValueError, match="fold 6"):
        make_folds(m, "emobox")


def test_loso():
    m = _ravdess_manifest(actors=range(1, 7), per_actor=3)
    folds = make_folds(m, "loso")
    assert len(folds) == 6
    assert [f.test_speakers for f in folds] == [(s,) for s in m.speakers]
    _check_fold_partition(m, folds)


@pytest.mark.parametrize("k", [2, 4, 5, 6])
def test_speakers_kfold(k):
    m = _ravdess_manifest()
    folds = make_folds(m, "speakers-kfold", k=k, seed=3)
    assert len(folds) == k
    _check_fold_partition(m, folds)
    genders = {u.speaker: u.gender for u in m}
    females = [sum(genders[s] == "female" for s in f.test_speakers) for f in folds]
    males = [sum(genders[s] == "male" for s in f.test_speakers) for f in folds]
    sizes = [len(f.test_speakers) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    assert min(females) >= 1 and min(males) >= 1  # both genders in every fold
    assert max(females) - min(females) <= 1 and max(males) - min(males) <= 1
    if 24 % (2 * k) == 0:
        assert set(females) == set(males) == {24 // (2 * k)}


def test_speakers_kfold_seed_and_errors():
    m = _ravdess_manifest()
    a = make_folds(m, "speakers-kfold", k=4, seed=0)
    b = make_folds(m, "speakers-kfold", k=4, seed=0)
    assert [f.test_speakers for f in a] == [f.test_speakers for f in b]
    assert len(make_folds(m, "speakers-kfold")) == 5  # default k
    with pytest.raises(ValueError):
        make_folds(m, "speakers-kfold", k=25)
    with pytest.raises(ValueError):
        make_folds(m, "speakers-kfold", k=1)
    with pytest.raises(ValueError, match="unknown protocol"):
        make_folds(m, "leave-two-out")


def test_random_protocol_warns_about_leakage():
    m = _ravdess_manifest(actors=range(1, 5), per_actor=10)
    with pytest.warns(SpeakerLeakWarning):
        folds = make_folds(m, "random", k=5)
    assert len(folds) == 5
    tested = sorted(i for f in folds for i in f.test)
    assert tested == list(range(len(m)))
    leaked = any({m[i].speaker for i in f.train} & {m[i].speaker for i in f.test} for f in folds)
    assert leaked


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_validation_split_is_by_speaker(fraction, seed):
    m = _ravdess_manifest(per_actor=3)
    fold = make_folds(m, "emobox")[seed]
    train, val = validation_split(m, fold.train, fraction=fraction, seed=seed)
    assert sorted(train + val) == sorted(fold.train)
    train_spk = {m[i].speaker for i in train}
    val_spk = {m[i].speaker for i in val}
    assert val_spk and train_spk
    assert train_spk.isdisjoint(val_spk)
    assert not val_spk & set(fold.test_speakers)
    n_spk = len(train_spk | val_spk)
    assert len(val_spk) == max(1, round(n_spk * fraction))
    if len(val_spk) >= 2:  # balanced across genders
        genders = Counter(m[i].gender for i in val if m[i].speaker in val_spk)
        assert set(genders) == {"female", "male"}


def test_validation_split_single_speaker_and_zero_fraction():
    m = _ravdess_manifest(actors=[3], per_actor=5)
    assert validation_split(m, list(range(5))) == (list(range(5)), [])
    m2 = _ravdess_manifest(actors=[1, 2], per_actor=2)
    assert validation_split(m2, [0, 1, 2, 3], fraction=0.0) == ([0, 1, 2, 3], [])


def test_speaker_groups_use_numpy_free_types():
    """Speaker ids in folds compare and serialise as plain strings."""
    m = _ravdess_manifest(actors=range(1, 9), per_actor=1)
    for f in make_folds(m, "speakers-kfold", k=2):
        assert all(isinstance(s, str) for s in f.test_speakers)
        assert all(isinstance(i, int) and not isinstance(i, np.integer) for i in f.test)
