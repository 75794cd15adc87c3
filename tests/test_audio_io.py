"""Audio I/O: formats, resampling, mixdown, loudness, sniffing, crop/pad/windows, and bad files."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from scorecast.data.audio import (
    audio_bytes_hash,
    audio_input_hash,
    crop_or_pad,
    load_audio,
    pad_batch,
    prepare_audio,
    sniff_audio_format,
    window_spans,
    windows,
)
from scorecast.errors import AudioError


def tone(freq: float, sr: int, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(wave: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / sr)[np.argmax(spec)])


@pytest.mark.parametrize(
    ("fmt", "subtype", "suffix", "exact"),
    [
        ("WAV", "FLOAT", ".wav", True),
        ("FLAC", "PCM_24", ".flac", False),
        ("OGG", "VORBIS", ".ogg", False),
        ("MP3", "MPEG_LAYER_III", ".mp3", False),
    ],
)
def test_reads_each_supported_format_with_the_same_tone(tmp_path, fmt, subtype, suffix, exact):
    wave = tone(440.0, 16000)
    path = tmp_path / f"a{suffix}"
    sf.write(path, wave, 16000, format=fmt, subtype=subtype)
    got = load_audio(path, sample_rate=16000)
    assert got.dtype == np.float32 and got.ndim == 1
    assert sniff_audio_format(path.read_bytes()[:16]) == fmt.lower()
    if exact:
        np.testing.assert_array_equal(got, wave)
    else:  # lossy codecs may add encoder delay/padding; the tone stays
        assert abs(len(got) - len(wave)) < 4000
        assert abs(peak_hz(got, 16000) - 440.0) < 5.0


def test_resampling_44k1_to_16k_keeps_length_ratio_and_frequency(tmp_path):
    path = tmp_path / "cd.wav"
    sf.write(path, tone(1000.0, 44100, seconds=2.0), 44100)
    got = load_audio(path, sample_rate=16000)
    assert len(got) == 32000
    assert abs(peak_hz(got, 16000) - 1000.0) < 2.0
    np.testing.assert_allclose(np.sqrt(np.mean(got[1000:-1000] ** 2)), 0.5 / np.sqrt(2), rtol=0.01)
    native = load_audio(path, sample_rate=None)
    assert len(native) == 88200


def test_stereo_is_mixed_down_to_mono_or_kept(tmp_path):
    left, right = tone(300.0, 16000), tone(700.0, 16000, amp=0.25)
    path = tmp_path / "st.wav"
    sf.write(path, np.stack([left, right], 1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), (left + right) / 2, atol=1e-7)
    both = load_audio(path, mono=False)
    assert both.shape == (2, 16000)
    np.testing.assert_array_equal(both[1], right)


def test_loudness_normalisation_sets_rms_level_and_leaves_silence(tmp_path):
    path = tmp_path / "quiet.wav"
    sf.write(path, tone(500.0, 16000, amp=0.01), 16000, subtype="FLOAT")
    got = load_audio(path, normalize_loudness=-20.0)
    assert 20 * np.log10(np.sqrt(np.mean(got.astype(np.float64) ** 2))) == pytest.approx(-20.0, abs=1e-3)
    silent = prepare_audio((np.zeros(800, np.float32), 16000), normalize_loudness=-20.0)
    np.testing.assert_array_equal(silent, np.zeros(800))


def test_in_memory_arrays_any_layout_and_int16():
    wave = tone(440.0, 8000)
    stereo_ct = np.stack([wave, wave])
    np.testing.assert_allclose(prepare_audio((stereo_ct, 8000), sample_rate=8000), wave, atol=1e-7)
    np.testing.assert_allclose(prepare_audio((stereo_ct.T, 8000), sample_rate=8000), wave, atol=1e-7)
    ints = (wave * 32767).astype(np.int16)
    np.testing.assert_allclose(prepare_audio((ints, 8000), sample_rate=8000), wave, atol=1e-4)
    assert len(prepare_audio((wave, 8000), sample_rate=16000)) == 16000
    with pytest.raises(AudioError, match="upload.wav.*positive integer sample rate"):
        prepare_audio((wave, 0), name="upload.wav")
    with pytest.raises(AudioError, match="<array>.*zero samples"):
        prepare_audio((np.zeros(0, np.float32), 16000))


def test_content_hash_follows_bytes_not_names(tmp_path):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    sf.write(a, tone(440.0, 16000), 16000)
    b.write_bytes(a.read_bytes())
    assert audio_bytes_hash(a) == audio_bytes_hash(b)
    sf.write(b, tone(441.0, 16000), 16000)
    os.utime(b, ns=(1, 1))  # a new mtime: the memo must not serve the old hash
    assert audio_bytes_hash(a) != audio_bytes_hash(b)
    wave = tone(440.0, 16000)
    assert audio_input_hash((wave, 16000)) != audio_input_hash((wave, 8000))
    assert audio_input_hash((wave, 16000)) == audio_input_hash((wave.copy(), 16000))


# ------------------------------------------------------------------ bad files


def test_empty_file_names_the_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.wav.*empty file \(0 bytes\)"):
        load_audio(path)


def test_zero_samples_names_the_file(tmp_path):
    path = tmp_path / "nothing.wav"
    sf.write(path, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match=r"nothing\.wav.*zero samples"):
        load_audio(path)


def test_non_audio_bytes_name_the_file(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is a text file, not audio\n" * 10)
    with pytest.raises(AudioError, match=r"notes\.wav.*not a readable audio file.*WAV, FLAC, Ogg or MP3"):
        load_audio(path)


def test_mp4_container_says_unsupported_and_suggests_ffmpeg(tmp_path):
    path = tmp_path / "clip.m4a"
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isommp42" + b"\x00" * 64)
    with pytest.raises(AudioError, match=r"clip\.m4a.*unsupported container \(MP4/AAC\).*ffmpeg -i clip\.m4a"):
        load_audio(path)


def test_all_nan_audio_names_the_file(tmp_path):
    path = tmp_path / "nan.wav"
    sf.write(path, np.full(100, np.nan, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav.*all samples are NaN or infinite"):
        load_audio(path)


def test_missing_file_or_directory_names_the_path(tmp_path):
    with pytest.raises(AudioError, match=r"gone\.wav.*not found"):
        load_audio(tmp_path / "gone.wav")
    with pytest.raises(AudioError, match=r"gone\.wav.*not found"):
        audio_bytes_hash(tmp_path / "gone.wav")
    (tmp_path / "dir.wav").mkdir()
    with pytest.raises(AudioError, match=r"dir\.wav.*got a directory"):
        load_audio(tmp_path / "dir.wav")
    with pytest.raises(AudioError, match=r"dir\.wav.*got a directory"):
        audio_bytes_hash(tmp_path / "dir.wav")


def test_sniffing_known_headers():
    assert sniff_audio_format(b"RIFF\x00\x00\x00\x00WAVEfmt ") == "wav"
    assert sniff_audio_format(b"fLaC\x00\x00\x00\x22") == "flac"
    assert sniff_audio_format(b"OggS\x00\x02") == "ogg"
    assert sniff_audio_format(b"ID3\x04\x00\x00") == "mp3"
    assert sniff_audio_format(b"\xff\xfb\x90\x64") == "mp3"  # MPEG-1 layer III frame
    assert sniff_audio_format(b"\xff\xf1\x50\x80") == "aac"  # ADTS
    assert sniff_audio_format(b"\x00\x00\x00\x18ftypmp42") == "mp4"
    assert sniff_audio_format(b"hello world, text") is None
    assert sniff_audio_format(b"") is None


# ------------------------------------------------------------------ crop / pad / windows


def test_crop_or_pad_modes():
    x = np.arange(1, 11, dtype=np.float32)
    np.testing.assert_array_equal(crop_or_pad(x, 4, "start"), [1, 2, 3, 4])
    np.testing.assert_array_equal(crop_or_pad(x, 4, "center"), [4, 5, 6, 7])
    np.testing.assert_array_equal(crop_or_pad(x, 4, "end"), [7, 8, 9, 10])
    np.testing.assert_array_equal(crop_or_pad(x[:3], 6, "start"), [1, 2, 3, 0, 0, 0])
    np.testing.assert_array_equal(crop_or_pad(x[:3], 6, "center"), [0, 1, 2, 3, 0, 0])
    np.testing.assert_array_equal(crop_or_pad(x[:3], 6, "end"), [0, 0, 0, 1, 2, 3])
    np.testing.assert_array_equal(crop_or_pad(x[:3], 7, "start", pad="repeat"), [1, 2, 3, 1, 2, 3, 1])
    np.testing.assert_array_equal(crop_or_pad(np.stack([x, -x]), 2, "start"), [[1, 2], [-1, -2]])
    with pytest.raises(ValueError, match="expected mode"):
        crop_or_pad(x, 4, "middle")


def test_window_spans_cover_the_signal_without_padding():
    assert window_spans(5, 10, 5) == [(0, 5)]
    assert window_spans(10, 10, 5) == [(0, 10)]
    assert window_spans(25, 10, 5) == [(0, 10), (5, 15), (10, 20), (15, 25)]
    assert window_spans(23, 10, 5) == [(0, 10), (5, 15), (10, 20), (13, 23)]
    wave = np.arange(23.0)
    parts = windows(wave, 10, 5)
    assert [len(p) for p in parts] == [10, 10, 10, 10]
    np.testing.assert_array_equal(parts[-1], wave[13:])
    with pytest.raises(ValueError, match="hop > 0"):
        window_spans(10, 4, 0)


def test_pad_batch_mask_marks_real_samples():
    batch, mask = pad_batch([np.ones(3, np.float32), np.ones(5, np.float32)])
    assert batch.shape == mask.shape == (2, 5)
    np.testing.assert_array_equal(mask.sum(1), [3, 5])
    np.testing.assert_array_equal(batch[0], [1, 1, 1, 0, 0])
