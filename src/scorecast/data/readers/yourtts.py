"""YourTTS listening tests (Casanova et al., ICML 2022), Portuguese: ``audio_path,score,evaluator_id``,
one row per (clip, listener), scores 1-5 (ACR).

Two tables share the format:

* ``naturalness-MOS.csv``: ``audio_path`` names one clip. Items: id = the path as written, ``audio``.
* ``Sim-MOS.csv``: the cell holds two paths, ``"generated, reference"``: the listener judged whether the
  generated clip sounds like the reference speaker. Items: id = the cell, ``audios`` =
  ``{"generated": ..., "reference": ...}`` (encoders read them as ``audio.generated`` /
  ``audio.reference``); ``audio`` is None.

Every item: target ``score`` = the mean rating with the per-listener ``Ratings`` (rater =
``evaluator_id``), ``group`` = the system (the clip's folder, or ``GT/<set>`` for ground-truth
recordings), ``meta["speaker"]`` = the target speaker (the file name up to its first ``_``) to group
folds by voice. The table names ``.wav`` files; the folder may hold the same stem as ``.flac``.
Audio lives in ``audio_dir`` (default ``audio/`` beside the table, else ``../audio``). Clips the table
names but the folder lacks are left out and listed in ``ItemSet.skipped`` (``require_audio: true``
makes them errors).
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from scorecast.data.aggregate import RatingCollector
from scorecast.data.items import Item
from scorecast.data.readers import READERS, Reader
from scorecast.data.table import RowErrors, base_dir_of, find_with_extensions, load_table, resolve_path
from scorecast.errors import DataError

LOW, HIGH = 1.0, 5.0
COLUMNS = ["audio_path", "score", "evaluator_id"]
EXTENSIONS = (".flac", ".wav", ".ogg", ".mp3")
PAIR_FIELDS = ("generated", "reference")


def system_of(path: str) -> str:
    """The system of a clip: its folder; ground truth ``GT/<set>/...`` is the one system ``GT/<set>``."""
    parts = path.replace("\\", "/").strip("/").split("/")
    if parts[0] == "GT" and len(parts) > 2:
        return "/".join(parts[:2])
    return posixpath.dirname("/".join(parts)) or "."


def speaker_of(path: str) -> str:
    """The target speaker: the file name up to its first ``_`` (``11995`` in ``11995_25.wav``)."""
    return posixpath.basename(path.replace("\\", "/")).split("_", 1)[0]


@READERS.register("yourtts")
class YourTTSReader(Reader):
    """YourTTS naturalness or speaker-similarity ratings (see the module docstring)."""

    target_names = ["score"]

    def __init__(self, audio_dir: str | None = None, require_audio: bool = False, format: str | None = None) -> None:
        self.audio_dir = audio_dir
        self.require_audio = bool(require_audio)
        self.format = format

    def _base(self, path: Path) -> Path:
        if self.audio_dir:
            return Path(self.audio_dir).resolve()
        here = base_dir_of(path) / "audio"
        return here if here.is_dir() else base_dir_of(path).parent / "audio"

    def _read(self, path: Path, errors: RowErrors) -> list[Item]:
        table = load_table(path, errors=errors, format=self.format)
        table.require(COLUMNS, "a YourTTS ratings table")
        base = self._base(path)
        collector = RatingCollector(path)
        first: dict[str, dict] = {}
        missing: dict[str, str] = {}
        for row in table.rows:
            view = table.view(row)
            try:
                cell = view.text("audio_path").strip()
                paths = [p.strip() for p in cell.split(",")]
                if len(paths) not in (1, 2) or not all(paths):
                    raise view.error(
                        f"expected one audio path or two ('generated, reference'), got {cell[:80]!r}", "audio_path"
                    )
                score = view.score("score", LOW, HIGH)
                rater = view.ident("evaluator_id")
                if cell in missing:
                    continue
                if cell not in first:
                    found = [find_with_extensions(resolve_path(p, base), EXTENSIONS) for p in paths]
                    if any(f is None for f in found):
                        lost = next(resolve_path(p, base) for p, f in zip(paths, found) if f is None)
                        problem = view.error(f"audio file does not exist: {lost} (nor with {', '.join(EXTENSIONS)})")
                        if self.require_audio:
                            raise problem
                        missing[cell] = str(problem)
                        errors.note(f"{problem}: left out (require_audio: true makes it an error)")
                        continue
                    first[cell] = {"paths": paths, "found": found, "row": view.number}
                collector.add(cell, score, rater, view.number, "evaluator_id")
            except DataError as exc:
                errors.handle(exc)
        items = []
        for cell, rec in first.items():
            if cell not in collector:
                continue
            ratings = collector.ratings(cell)
            paths, found = rec["paths"], rec["found"]
            item = Item(
                id=cell,
                targets={"score": ratings.mean},
                ratings={"score": ratings},
                group=system_of(paths[0]),
                meta={"row": rec["row"], "speaker": speaker_of(paths[0])},
            )
            if len(paths) == 1:
                item.audio = found[0]
            else:
                item.audios = dict(zip(PAIR_FIELDS, found))
            items.append(item)
        return items
