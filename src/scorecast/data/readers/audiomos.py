"""AudioMOS 2025 track 1 / MusicEval list files: ``filename,overall,textual`` (music impression and
text alignment, each 1-5).

Lines look like ``audiomos2025-track1-S002_P044.wav,4.2,3.9``; a header line is allowed (detected)
and test lists may hold the file name alone. Items get id = the file name without its audio
extension (the form ``answer.txt`` uses), targets ``MI`` (overall / music impression) and ``TA``
(textual / text alignment), ``group`` = the system id and ``meta["prompt_id"]`` = the prompt id,
both parsed from the file name with ``id_regex`` (named groups ``system`` and, optionally,
``prompt``; default ``S002``/``P044`` style). With ``prompts`` (one table or several, each
``id<TAB or comma>text`` with an optional header) items get ``texts["prompt"]``, looked up by the
full file name, then the name without extension, then the prompt id (so MusicEval's
``prompt_info.txt`` and ``demo_prompt_info.txt`` both work).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from scorecast.data.items import Item
from scorecast.data.readers import READERS, Reader
from scorecast.data.table import (
    AUDIO_EXTENSIONS,
    RowErrors,
    base_dir_of,
    file_exists,
    load_table,
    resolve_path,
)
from scorecast.errors import ConfigError, DataError

LOW, HIGH = 1.0, 5.0
DEFAULT_ID_REGEX = r"(?P<system>S\d+)_(?P<prompt>P\d+)"
_HEADER_WORDS = {"id", "filename", "file", "wav", "wav_id", "wavid", "prompt_id", "prompt", "key", "name"}


def _looks_like_header(first: list[str]) -> bool:
    if first[0].strip().lower() in _HEADER_WORDS:
        return True
    if len(first) > 1:
        try:
            float(first[1])
        except ValueError:
            return True
    return False


def strip_audio_extension(name: str) -> str:
    stem, ext = os.path.splitext(name)
    return stem if ext.lower() in AUDIO_EXTENSIONS else name


@READERS.register("audiomos")
class AudioMOSReader(Reader):
    """MusicEval / AudioMOS 2025 track 1 lists (see the module docstring).

    ``audio_dir``: folder of the audio (default: the list's folder); ``check_audio`` (default: true
    when ``audio_dir`` is given); ``require_prompt``: with ``prompts``, a clip without a prompt is
    an error (default) or gets no text.
    """

    target_names = ["MI", "TA"]

    def __init__(
        self,
        audio_dir: str | None = None,
        check_audio: bool | None = None,
        prompts: str | list[str] | None = None,
        require_prompt: bool = True,
        id_regex: str | None = DEFAULT_ID_REGEX,
        format: str | None = None,
    ) -> None:
        self.audio_dir = audio_dir
        self.check_audio = bool(audio_dir) if check_audio is None else bool(check_audio)
        if isinstance(prompts, str):
            prompts = [prompts]
        if prompts is not None and not (isinstance(prompts, list) and all(isinstance(p, str) for p in prompts)):
            raise ConfigError(f"option prompts: expected a file path or a list of paths, got {prompts!r}")
        self.prompt_files = prompts or []
        self.require_prompt = bool(require_prompt)
        self.regex = None
        if id_regex is not None:
            try:
                self.regex = re.compile(id_regex)
            except (re.error, TypeError) as exc:
                raise ConfigError(f"option id_regex: not a valid regular expression ({exc}): {id_regex!r}") from None
            if "system" not in self.regex.groupindex:
                raise ConfigError(f"option id_regex: expected a named group (?P<system>...), got {id_regex!r}")
        self.format = format

    def _prompts(self) -> dict[str, str]:
        table: dict[str, str] = {}
        where: dict[str, str] = {}
        for file in self.prompt_files:
            prompts = load_table(file, header=lambda first: first[0].strip().lower() in _HEADER_WORDS)
            if len(prompts.columns) < 2:
                raise DataError(f"prompt table: expected two columns (id, text), got {len(prompts.columns)}", file=file)
            key_col, text_col = prompts.columns[:2]
            for row in prompts.rows:
                view = prompts.view(row)
                key = view.ident(key_col)
                text = view.text(text_col)
                if key in table and table[key] != text:
                    raise view.error(
                        f"prompt {key!r} is given twice with different texts (first at {where[key]})", key_col
                    )
                table[key] = text
                where[key] = f"{file} row {view.number}"
        return table

    def _read(self, path: Path, errors: RowErrors) -> list[Item]:
        prompts = self._prompts() if self.prompt_files else None
        table = load_table(path, errors=errors, format=self.format, header=_looks_like_header)
        if len(table.columns) > 3:
            raise DataError(
                f"not an AudioMOS list: expected 'filename[,overall,textual]', got {len(table.columns)} columns",
                file=path,
            )
        name_col = table.columns[0]
        score_cols = dict(zip(["MI", "TA"], table.columns[1:]))
        base = Path(self.audio_dir).resolve() if self.audio_dir else base_dir_of(path)
        items = []
        for row in table.rows:
            view = table.view(row)
            try:
                filename = view.ident(name_col)
                item_id = strip_audio_extension(os.path.basename(filename))
                errors.claim_id(item_id, view.number, name_col)
                item = Item(id=item_id, meta={"row": view.number, "filename": filename})
                audio = resolve_path(filename, base)
                if self.check_audio and not file_exists(audio):
                    raise view.error(f"audio file does not exist: {audio}", name_col)
                item.audio = audio
                prompt_id = None
                if self.regex is not None:
                    match = self.regex.search(item_id)
                    if match is None:
                        raise view.error(
                            f"file name {filename!r} does not match id_regex {self.regex.pattern!r} "
                            "(expected a system id in it, e.g. ...-S002_P044.wav)",
                            name_col,
                        )
                    item.group = match.group("system")
                    prompt_id = match.groupdict().get("prompt")
                    if prompt_id is not None:
                        item.meta["prompt_id"] = prompt_id
                if prompts is not None:
                    keys = [os.path.basename(filename), item_id] + ([prompt_id] if prompt_id else [])
                    text = next((prompts[k] for k in keys if k in prompts), None)
                    if text is not None:
                        item.texts["prompt"] = text
                    elif self.require_prompt:
                        raise view.error(
                            f"no prompt text for {', '.join(map(repr, keys))} in the prompt table(s)", name_col
                        )
                for target, col in score_cols.items():
                    item.targets[target] = view.score(col, LOW, HIGH)
            except DataError as exc:
                errors.handle(exc)
                continue
            items.append(item)
        return items
