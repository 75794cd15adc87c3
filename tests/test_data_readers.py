"""Each challenge reader on small files written here: the items it makes, and its bad-input errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from scorecast.data.readers import READERS
from scorecast.data.readers.da5401 import read_da5401_scores
from scorecast.errors import ConfigError, DataError


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


# -- XACLE --------------------------------------------------------------------------------------


def test_xacle_average_csv(tmp_path: Path) -> None:
    _touch(tmp_path / "wav" / "1.wav")
    _touch(tmp_path / "wav" / "2.wav")
    path = _write(
        tmp_path / "train_average.csv", 'wav_file_name,text,average_score\n1.wav,"A dog, barking",7.5\n2.wav,Rain,0\n'
    )
    items = READERS.build("xacle", audio_dir=str(tmp_path / "wav")).read(path)
    assert items.ids == ["1.wav", "2.wav"]
    assert items[0].texts == {"caption": "A dog, barking"}
    assert items[0].audio == str((tmp_path / "wav" / "1.wav").resolve())
    np.testing.assert_allclose(items.targets(), [7.5, 0.0])
    assert items[0].group is None
    with pytest.raises(DataError, match=r"row 2, field 'wav_file_name': audio file does not exist: .*other/1.wav"):
        READERS.build("xacle", audio_dir=str(tmp_path / "other")).read(path)


def test_xacle_mos_list_and_test_table(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "val_mos.txt", "wav,caption,MOS\n/tango/test/5.wav,Birds sing,9.333\n/audiocaps/test/5.wav,Birds,2\n"
    )
    items = READERS.build("xacle").read(path)  # no audio_dir: paths not checked
    assert items.ids == ["/tango/test/5.wav", "/audiocaps/test/5.wav"]
    assert items[0].audio == str(tmp_path.resolve() / "tango" / "test" / "5.wav")
    assert items.groups() == ["tango", "audiocaps"]
    test = _write(tmp_path / "test.csv", "wav_file_name,text\n9.wav,x\n")
    items = READERS.build("xacle").read(test)
    assert items.target_names == [] and items[0].targets == {}


def test_xacle_bad_input(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"not an XACLE table.*'wav_path', 'score'"):
        READERS.build("xacle").read(_write(tmp_path / "a.csv", "wav_path,score\nx,1\n"))
    with pytest.raises(
        DataError, match=r"row 2, field 'average_score': score 11 out of range: expected a value in \[0, 10\]"
    ):
        READERS.build("xacle").read(_write(tmp_path / "b.csv", "wav_file_name,text,average_score\n1.wav,x,11\n"))
    with pytest.raises(DataError, match=r"row 2, field 'text': empty text"):
        READERS.build("xacle").read(_write(tmp_path / "c.csv", "wav_file_name,text,average_score\n1.wav,,1\n"))
    with pytest.raises(DataError, match=r"missing column 'average_score'"):
        READERS.build("xacle", labelled=True).read(_write(tmp_path / "d.csv", "wav_file_name,text\n1.wav,x\n"))


def test_xacle_listeners_aggregates_per_clip(tmp_path: Path) -> None:
    text = (
        "bach1_2024.csv,/tango/train/1.wav,3,tango,Kids shout,no_tempo\n"
        "ravel2_2024.csv,/tango/train/1.wav,5,tango,Kids shout,no_tempo\n"
        'bach1_2024.csv,/audiocaps/train/2.wav,10,natural,"A car, then a horn",temporal\n'
    )
    items = READERS.build("xacle-listeners").read(_write(tmp_path / "train.txt", text))
    assert items.ids == ["/tango/train/1.wav", "/audiocaps/train/2.wav"]
    first = items[0]
    assert first.targets["score"] == 4.0 and first.ratings["score"].raters == ["bach1_2024", "ravel2_2024"]
    assert first.group == "tango" and first.meta["tempo"] == "no_tempo"
    assert items[1].texts["caption"] == "A car, then a horn"


def test_xacle_listeners_bad_input(tmp_path: Path) -> None:
    twice = "l1.csv,/a/1.wav,3,tango,x,t\nl1.csv,/a/1.wav,4,tango,x,t\n"
    with pytest.raises(
        DataError, match=r"row 2.*rater 'l1' rated item '/a/1.wav' twice: first at row 1, again at row 2"
    ):
        READERS.build("xacle-listeners").read(_write(tmp_path / "a.txt", twice))
    caption = "l1.csv,/a/1.wav,3,tango,x,t\nl2.csv,/a/1.wav,4,tango,y,t\n"
    with pytest.raises(DataError, match=r"row 2, field 'caption'.*differs from 'x' at its first row 1"):
        READERS.build("xacle-listeners").read(_write(tmp_path / "b.txt", caption))
    short = "l1.csv,/a/1.wav,3,tango,x\n"
    with pytest.raises(DataError, match=r"row 1: malformed row: expected 6 fields"):
        READERS.build("xacle-listeners").read(_write(tmp_path / "c.txt", short))


# -- AudioMOS / MusicEval -----------------------------------------------------------------------


def test_audiomos_list_with_prompts(tmp_path: Path) -> None:
    lst = _write(
        tmp_path / "sets" / "dev_mos_list.txt",
        "audiomos2025-track1-S002_P044.wav,4.2,3.9\naudiomos2025-track1-S013_P001.wav,2,1\n",
    )
    prompts = _write(tmp_path / "prompt_info.txt", "id\ttext\nP044\tcalm piano\nP001\tloud drums\n")
    demo = _write(tmp_path / "demo_prompt_info.txt", "id\ttext\naudiomos2025-track1-S013_P001.wav\tdemo prompt\n")
    items = READERS.build("audiomos", prompts=[str(demo), str(prompts)]).read(lst)
    assert items.ids == ["audiomos2025-track1-S002_P044", "audiomos2025-track1-S013_P001"]
    assert items.target_names == ["MI", "TA"]
    np.testing.assert_allclose(items.target_matrix(), [[4.2, 3.9], [2, 1]])
    assert items.groups() == ["S002", "S013"]
    assert items[0].texts["prompt"] == "calm piano" and items[0].meta["prompt_id"] == "P044"
    assert items[1].texts["prompt"] == "demo prompt"  # the full-name entry wins over the prompt id


def test_audiomos_header_test_list_and_custom_regex(tmp_path: Path) -> None:
    lst = _write(tmp_path / "l.csv", "filename,overall,textual\nsysA-clip1.wav,3,4\n")
    items = READERS.build("audiomos", id_regex=r"^(?P<system>[^-]+)-").read(lst)
    assert items.groups() == ["sysA"] and items[0].targets == {"MI": 3.0, "TA": 4.0}
    test = _write(tmp_path / "test.txt", "audiomos2025-track1-S001_P002.wav\n")
    prompts = _write(tmp_path / "prompts.csv", "P002,a song about rain\n")  # no header
    items = READERS.build("audiomos", prompts=str(prompts)).read(test)
    assert items[0].targets == {} and items.target_names == []
    assert items[0].texts["prompt"] == "a song about rain"


def test_audiomos_bad_input(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"row 1, field '1': file name 'x.wav' does not match id_regex"):
        READERS.build("audiomos").read(_write(tmp_path / "a.txt", "x.wav,3,3\n"))
    with pytest.raises(DataError, match=r"row 1, field '3': score 6 out of range"):
        READERS.build("audiomos").read(_write(tmp_path / "b.txt", "a-S1_P1.wav,3,6\n"))
    prompts = _write(tmp_path / "p.txt", "id\ttext\nP9\tsomething\n")
    with pytest.raises(DataError, match=r"row 1.*no prompt text for .*'P1'"):
        READERS.build("audiomos", prompts=str(prompts)).read(_write(tmp_path / "c.txt", "a-S1_P1.wav,3,3\n"))
    with pytest.raises(ConfigError, match="named group"):
        READERS.build("audiomos", id_regex=r"S\d+")


# -- SHL -------------------------------------------------------------------------------------------


def test_shl_finds_audio_by_extension_and_reads_transcripts(tmp_path: Path) -> None:
    _touch(tmp_path / "audio" / "audio_1.ogg")
    _touch(tmp_path / "audio" / "audio_2.wav")
    path = _write(
        tmp_path / "train.csv", 'filename,label,transcript\naudio_1,3.5,"I goes, home"\naudio_2,2,x\naudio_3,5,y\n'
    )
    items = READERS.build("shl").read(path)
    assert [Path(i.audio).name if i.audio else None for i in items] == ["audio_1.ogg", "audio_2.wav", None]
    assert items[0].texts["transcript"] == "I goes, home"
    np.testing.assert_allclose(items.targets(), [3.5, 2, 5])
    with pytest.raises(DataError, match=r"row 4, field 'filename': audio file does not exist: tried audio_3.wav"):
        READERS.build("shl", require_audio=True).read(path)


def test_shl_separate_transcripts_and_unlabelled(tmp_path: Path) -> None:
    trans = _write(tmp_path / "t.csv", "filename,transcript\naudio_1,hello\n")
    test = _write(tmp_path / "test.csv", "filename\naudio_1\n")
    items = READERS.build("shl", labelled=False, transcripts=str(trans)).read(test)
    assert items[0].texts == {"transcript": "hello"} and items[0].targets == {}
    with pytest.raises(DataError, match="missing column 'label'"):
        READERS.build("shl").read(test)
    with pytest.raises(DataError, match=r"row 3, field 'label': score 0 out of range"):
        READERS.build("shl").read(_write(tmp_path / "b.csv", "filename,label\na,1\nb,0\n"))


# -- DA5401 ---------------------------------------------------------------------------------------


@pytest.fixture
def da_dir(tmp_path: Path) -> Path:
    _write(tmp_path / "metric_names.json", json.dumps(["fluency", "safety/harm"]))
    np.save(tmp_path / "metric_name_embeddings.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
    return tmp_path


def _record(metric: str = "fluency", score: object = "9.0", **kw: object) -> dict:
    rec = {"metric_name": metric, "score": score, "user_prompt": "q?", "response": "a.", "system_prompt": None}
    rec.update(kw)
    return rec


def test_da5401_json_and_jsonl(da_dir: Path) -> None:
    path = _write(
        da_dir / "train_data.json", json.dumps([_record(), _record("safety/harm", 3, system_prompt="be safe")])
    )
    items = READERS.build("da5401").read(path)
    assert items.ids == ["1", "2"]
    np.testing.assert_allclose(items.targets(), [9.0, 3.0])
    np.testing.assert_allclose(items[1].vectors["metric"], [3, 4, 5])
    assert items[0].texts == {"system_prompt": "", "user_prompt": "q?", "response": "a."}
    assert items[1].group == "safety/harm"
    lines = "\n".join(json.dumps({k: v for k, v in _record(ID=i).items() if k != "score"}) for i in (7, 8))
    test = _write(da_dir / "test_data.jsonl", lines + "\n")
    items = READERS.build("da5401").read(test)
    assert items.ids == ["7", "8"] and items.target_names == []


def test_da5401_bad_input(da_dir: Path) -> None:
    path = _write(da_dir / "a.json", json.dumps([_record(), _record("nonsense")]))
    with pytest.raises(DataError, match=r"row 2, field 'metric_name': unknown metric name 'nonsense'"):
        READERS.build("da5401").read(path)
    path = _write(da_dir / "b.json", json.dumps([_record(response="  ")]))
    with pytest.raises(DataError, match=r"row 1, field 'response': empty text"):
        READERS.build("da5401").read(path)
    path = _write(da_dir / "c.json", json.dumps([_record(score="ten")]))
    with pytest.raises(DataError, match=r"row 1, field 'score': non-numeric score"):
        READERS.build("da5401").read(path)
    np.save(da_dir / "bad.npy", np.zeros((3, 2)))
    path = _write(da_dir / "d.json", json.dumps([_record()]))
    with pytest.raises(DataError, match=r"expected shape \(2, D\) to match the 2 metric names, got \(3, 2\)"):
        READERS.build("da5401", metric_embeddings=str(da_dir / "bad.npy")).read(path)


def test_da5401_scores_helper(tmp_path: Path) -> None:
    np.save(tmp_path / "y.npy", np.array([9, 10, 0.5], dtype=np.float32))
    np.testing.assert_allclose(read_da5401_scores(tmp_path / "y.npy"), [9, 10, 0.5])
    np.save(tmp_path / "z.npy", np.array([11.0]))
    with pytest.raises(DataError, match=r"expected finite values in \[0, 10\], got 11"):
        read_da5401_scores(tmp_path / "z.npy")


# -- STS-B ------------------------------------------------------------------------------------------


def test_stsb_quotes_and_trailing_fields(tmp_path: Path) -> None:
    text = (
        'main-captions\tMSRvid\t2012test\t0001\t5.000\tA "plane" is taking off.\tAn air plane is taking off.\n'
        "main-forum\tdeft-forum\t2014\t0002\t1.5\tIt's odd.\tIt's fine.\tsrc\tlicence\n"
    )
    items = READERS.build("stsb").read(_write(tmp_path / "sts-train.csv", text))
    assert items.ids == ["MSRvid-2012test-0001", "deft-forum-2014-0002"]
    assert items[0].texts["sentence1"] == 'A "plane" is taking off.'
    assert items.groups() == ["main-captions", "main-forum"]
    np.testing.assert_allclose(items.targets(), [5.0, 1.5])


def test_stsb_bad_input(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"row 1: malformed row: expected 7 fields"):
        READERS.build("stsb").read(_write(tmp_path / "a.csv", "g\tf\t2012\t1\t2.0\tonly one\n"))
    dup = "g\tf\t2012\t1\t2.0\ta\tb\ng\tf\t2012\t1\t3.0\tc\td\n"
    with pytest.raises(DataError, match=r"duplicated id 'f-2012-1': first at row 1, again at row 2"):
        READERS.build("stsb").read(_write(tmp_path / "b.csv", dup))


# -- MUSHRA ------------------------------------------------------------------------------------------

MUSHRA = (
    "signal,condition,ratings,participant_ids,file\n"
    'S1,Ref,"[90.0, 100.0]","[1, 2]",stim_01/ref.wav\n'
    'S1,Codec,"[20, 40, 60]","[1, 2, 3]",stim_01/codec.wav\n'
    'S1,Anchor,"[0.0, 10.0]","[1, 2]",\n'
)


def test_mushra_lists_flac_fallback_and_anchor(tmp_path: Path) -> None:
    _touch(tmp_path / "audio" / "stim_01" / "ref.wav")
    _touch(tmp_path / "audio" / "stim_01" / "codec.flac")  # named .wav in the CSV
    path = _write(tmp_path / "ratings.csv", MUSHRA)
    with pytest.warns(UserWarning, match="left out 1 row"):
        items = READERS.build("mushra").read(path)
    assert items.ids == ["S1:Ref", "S1:Codec"]
    assert Path(items[1].audio).name == "codec.flac"
    assert items[1].targets["score"] == 40.0 and items[1].ratings["score"].raters == ["1", "2", "3"]
    assert items.groups() == ["Ref", "Codec"] and items[0].meta["signal"] == "S1"
    assert "hidden anchor" in items.skipped[0] and "row 4" in items.skipped[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        items = READERS.build("mushra", include_no_audio=True).read(path)
    assert items[2].audio is None and items[2].targets["score"] == 5.0


def test_mushra_bad_input(tmp_path: Path) -> None:
    _touch(tmp_path / "audio" / "x.wav")
    base = "signal,condition,ratings,participant_ids,file\n"
    cases = [
        ('S,C,"[1, 2","[1, 2]",x.wav\n', r"row 2, field 'ratings': malformed list"),
        ('S,C,"[1, 2]","[1]",x.wav\n', r"row 2, field 'participant_ids': expected one participant id per rating"),
        ('S,C,"[1, 200]","[1, 2]",x.wav\n', r"row 2, field 'ratings': score 200 out of range"),
        ('S,C,"[1, 2]","[1, 2]",y.wav\n', r"row 2, field 'file': audio file does not exist"),
        ('S,C,"__import__(\'os\')","[1]",x.wav\n', r"row 2, field 'ratings': malformed list"),
    ]
    for i, (row, message) in enumerate(cases):
        with pytest.raises(DataError, match=message):
            READERS.build("mushra").read(_write(tmp_path / f"m{i}.csv", base + row))
