"""SHL spoken-grammar scoring tables: ``filename,label`` (score 1-5), optionally with ``transcript``.

Audio is looked up as ``<audio_dir>/<filename>.<ext>`` for ``.wav``, ``.ogg``, ``.flac``, ``.mp3``
in that order (a file name that already ends in one of them is tried as it is first);
``audio_dir`` defaults to ``audio/`` beside the table. A row whose audio is missing is an error
when ``require_audio`` is true, else the item gets ``audio=None`` (transcript-only). Transcripts
come from a ``transcript`` column or from a separate ``transcripts`` table
(``filename,transcript``), into ``texts["transcript"]``; an empty transcript is an error.
``labelled=False`` reads test tables (no ``label`` column, or empty labels): no target.
"""

from __future__ import annotations

import os
from pathlib import Path

from scorecast.data.items import Item
from scorecast.data.readers import READERS, Reader
from scorecast.data.table import AUDIO_EXTENSIONS, RowErrors, base_dir_of, file_exists, load_table, resolve_path
from scorecast.errors import ConfigError, DataError

LOW, HIGH = 1.0, 5.0


@READERS.register("shl")
class SHLReader(Reader):
    """SHL grammar tables (see the module docstring)."""

    target_names = ["score"]

    def __init__(
        self,
        audio_dir: str | None = None,
        require_audio: bool = False,
        transcripts: str | None = None,
        labelled: bool = True,
        extensions: list[str] | tuple[str, ...] = AUDIO_EXTENSIONS,
        format: str | None = None,
    ) -> None:
        self.audio_dir = audio_dir
        self.require_audio = bool(require_audio)
        self.transcripts = transcripts
        self.labelled = bool(labelled)
        if isinstance(extensions, str) or not all(isinstance(e, str) and e.startswith(".") for e in extensions):
            raise ConfigError(f"option extensions: expected a list like ['.wav', '.ogg'], got {extensions!r}")
        self.extensions = tuple(extensions)
        self.format = format

    def _find_audio(self, base: Path, filename: str) -> str | None:
        candidates = []
        if os.path.splitext(filename)[1].lower() in self.extensions:
            candidates.append(resolve_path(filename, base))
        candidates += [resolve_path(filename + ext, base) for ext in self.extensions]
        return next((c for c in candidates if file_exists(c)), None)

    def _transcript_table(self) -> dict[str, str]:
        table = load_table(self.transcripts)
        table.require(["filename", "transcript"], "an SHL transcripts table")
        out: dict[str, str] = {}
        for row in table.rows:
            view = table.view(row)
            name = view.ident("filename")
            if name in out:
                raise view.error(f"filename {name!r} appears twice in the transcripts table", "filename")
            out[name] = view.text("transcript")
        return out

    def _read(self, path: Path, errors: RowErrors) -> list[Item]:
        table = load_table(path, errors=errors, format=self.format)
        table.require(["filename"] + (["label"] if self.labelled else []), "an SHL table")
        extra = self._transcript_table() if self.transcripts else None
        has_transcript = "transcript" in table.columns
        base = Path(self.audio_dir).resolve() if self.audio_dir else base_dir_of(path) / "audio"
        items = []
        for row in table.rows:
            view = table.view(row)
            try:
                name = view.ident("filename")
                errors.claim_id(name, view.number, "filename")
                item = Item(id=name, meta={"row": view.number})
                item.audio = self._find_audio(base, name)
                if item.audio is None and self.require_audio:
                    tried = ", ".join(name + e for e in self.extensions)
                    raise view.error(f"audio file does not exist: tried {tried} in {base}", "filename")
                if has_transcript:
                    item.texts["transcript"] = view.text("transcript")
                elif extra is not None:
                    if name not in extra:
                        raise view.error(f"no transcript for {name!r} in {self.transcripts}", "filename")
                    item.texts["transcript"] = extra[name]
                if "label" in table.columns and not (not self.labelled and view.missing("label")):
                    item.targets["score"] = view.score("label", LOW, HIGH)
            except DataError as exc:
                errors.handle(exc)
                continue
            items.append(item)
        return items
