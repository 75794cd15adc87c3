"""Items to score straight from what a user points at: audio files, folders of them (searched
recursively), and texts given on the command line; no table needed. Used by ``scorecast score`` and
``scorecast predict``. The id of an audio item is its path as given (or as found under a folder)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from scorecast.data.items import Item
from scorecast.errors import ConfigError, DataError

#: what soundfile reads (WAV, FLAC, Ogg Vorbis/Opus, MP3, and the AIFF family)
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff")


def is_audio_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def find_audio(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Every audio file named, or found (recursively, sorted) under every folder named, once each.

    A path that does not exist, a file that is not audio, or a folder without audio is a DataError."""
    out: dict[str, None] = {}
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and is_audio_path(p))
            if not found:
                raise DataError(
                    f"expected audio files ({', '.join(AUDIO_EXTENSIONS)}) in this folder or below it, found none",
                    file=path,
                )
            out.update(dict.fromkeys(str(p) for p in found))
        elif path.is_file():
            if not is_audio_path(path):
                raise DataError(
                    f"expected an audio file ({', '.join(AUDIO_EXTENSIONS)}) or a folder, got '{path.suffix}'",
                    file=path,
                )
            out[str(given)] = None
        else:
            raise DataError("file or folder not found", file=path)
    return list(out)


def items_from_sources(inputs, audio: Sequence[str], texts: Sequence[str] = ()) -> list[Item]:
    """Items for a scorer whose inputs are ``inputs`` (:class:`~scorecast.inference.predictor.InputSpec`)
    from audio paths and/or texts. A scorer with audio and one text field pairs the i-th text with the
    i-th file; a text-only scorer gets one item per text (ids "text-1", "text-2", ...)."""
    audio, texts = list(audio), list(texts)
    if not audio and not texts:
        raise ConfigError(f"expected audio files, folders or --text for this scorer ({inputs.expected()}), got none")
    if texts and len(inputs.texts) != 1:
        raise ConfigError(
            f"--text fits a scorer with one text input; this one reads {list(inputs.texts) or 'no text'} "
            f"(expected {inputs.expected()}); give a table instead"
        )
    if audio and not inputs.audio:
        raise ConfigError(f"this scorer reads no audio (expected {inputs.expected()}); got {len(audio)} audio file(s)")
    if inputs.audio and not audio:
        raise ConfigError(f"this scorer needs audio (expected {inputs.expected()}); got only --text")
    if audio and inputs.texts and len(texts) != len(audio):
        raise ConfigError(
            f"this scorer reads audio and text '{inputs.texts[0]}': expected one --text per audio file "
            f"({len(audio)}), got {len(texts)}"
        )
    if inputs.vectors:
        raise ConfigError(f"this scorer reads vectors ({', '.join(inputs.vectors)}); give a table that holds them")
    field = inputs.texts[0] if inputs.texts else None
    if audio:
        return [
            Item(id=a, audio=str(Path(a).resolve()), texts={field: texts[i]} if field else {})
            for i, a in enumerate(audio)
        ]
    return [Item(id=f"text-{i + 1}", texts={field: t}) for i, t in enumerate(texts)]
