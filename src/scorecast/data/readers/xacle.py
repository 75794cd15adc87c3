"""XACLE (text-audio alignment, scores 0-10) readers.

``xacle`` reads the per-clip tables in either layout (told apart by the header):

* the challenge's ``train_average.csv`` / ``validation_average.csv``: ``wav_file_name,text,average_score``
  (test tables: no score column);
* the early benchmark lists ``*_mos.txt``: ``wav,caption,MOS``.

``xacle-listeners`` reads the per-listener lists (``train.txt``...; no header:
``listener_sheet, wav_path, score, generator, caption, tempo``) and aggregates them per clip, with
the listener sheet (``.csv`` dropped) as the rater id and the generator as the item's group.

Both give items with id = the file name as written in the list, ``texts["caption"]`` (the caption,
whatever the column is called) and target ``score`` in [0, 10]. List paths such as
``/audiocaps/train/1.wav`` are relative to the dataset root: audio is ``audio_dir`` (default: the
list's folder) joined with the path minus its leading ``/``. Audio files are checked to exist only
when ``check_audio`` is true, which it is by default when ``audio_dir`` is given (the lists are
usable without the audio). ``group`` is the generator: the list's ``generator`` field, or for
``xacle`` the first folder of a path such as ``/tango/train/1.wav`` (none for bare file names).
"""

from __future__ import annotations

from pathlib import Path

from scorecast.data.aggregate import RatingCollector
from scorecast.data.items import Item
from scorecast.data.readers import READERS, Reader
from scorecast.data.table import RowErrors, RowView, base_dir_of, file_exists, load_table, resolve_path
from scorecast.errors import DataError

LOW, HIGH = 0.0, 10.0
LAYOUTS = (
    # (id column, text column, score column)
    ("wav_file_name", "text", "average_score"),
    ("wav", "caption", "MOS"),
)
LISTENER_COLUMNS = ["listener_sheet", "wav_path", "score", "generator", "caption", "tempo"]


class _XacleAudio:
    def __init__(self, table_path: Path, audio_dir: str | None, check_audio: bool | None) -> None:
        self.base = Path(audio_dir).resolve() if audio_dir else base_dir_of(table_path)
        self.check = bool(audio_dir) if check_audio is None else bool(check_audio)

    def __call__(self, value: str, view: RowView, field: str) -> str:
        path = resolve_path(value.lstrip("/\\") or value, self.base)
        if self.check and not file_exists(path):
            raise view.error(f"audio file does not exist: {path}", field)
        return path


def _generator_of(path: str) -> str | None:
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    return parts[0] if len(parts) > 1 else None


@READERS.register("xacle")
class XacleReader(Reader):
    """Per-clip XACLE tables (``wav_file_name,text,average_score`` or ``wav,caption,MOS``).

    ``labelled``: None (default) reads scores when the score column is there; True requires it;
    False ignores it.
    """

    target_names = ["score"]

    def __init__(
        self,
        audio_dir: str | None = None,
        check_audio: bool | None = None,
        labelled: bool | None = None,
        format: str | None = None,
    ) -> None:
        self.audio_dir = audio_dir
        self.check_audio = check_audio
        self.labelled = labelled
        self.format = format

    def _read(self, path: Path, errors: RowErrors) -> list[Item]:
        table = load_table(path, errors=errors, format=self.format)
        layout = next((lay for lay in LAYOUTS if lay[0] in table.columns), None)
        if layout is None:
            raise DataError(
                "not an XACLE table: expected a header 'wav_file_name,text,average_score' or 'wav,caption,MOS'; "
                f"the columns present are: {', '.join(map(repr, table.columns))}",
                file=path,
            )
        id_col, text_col, score_col = layout
        labelled = score_col in table.columns if self.labelled is None else self.labelled
        table.require([id_col, text_col] + ([score_col] if labelled else []), "an XACLE table")
        audio = _XacleAudio(path, self.audio_dir, self.check_audio)
        items = []
        for row in table.rows:
            view = table.view(row)
            try:
                item_id = view.ident(id_col)
                errors.claim_id(item_id, view.number, id_col)
                item = Item(
                    id=item_id,
                    audio=audio(item_id, view, id_col),
                    texts={"caption": view.text(text_col)},
                    group=_generator_of(item_id),
                    meta={"row": view.number},
                )
                if labelled:
                    item.targets["score"] = view.score(score_col, LOW, HIGH)
            except DataError as exc:
                errors.handle(exc)
                continue
            items.append(item)
        return items


@READERS.register("xacle-listeners")
class XacleListenersReader(Reader):
    """Per-listener XACLE lists, aggregated per clip into Ratings (rater = listener sheet)."""

    target_names = ["score"]

    def __init__(
        self, audio_dir: str | None = None, check_audio: bool | None = None, format: str | None = None
    ) -> None:
        self.audio_dir = audio_dir
        self.check_audio = check_audio
        self.format = format

    def _read(self, path: Path, errors: RowErrors) -> list[Item]:
        table = load_table(
            path,
            errors=errors,
            format=self.format,
            header=lambda first: first[0].strip().lower() == "listener_sheet",
            names=LISTENER_COLUMNS,
        )
        table.require(LISTENER_COLUMNS, "an XACLE per-listener list")
        audio = _XacleAudio(path, self.audio_dir, self.check_audio)
        collector = RatingCollector(path)
        first: dict[str, Item] = {}
        for row in table.rows:
            view = table.view(row)
            try:
                sheet = view.ident("listener_sheet")
                rater = sheet[: -len(".csv")] if sheet.lower().endswith(".csv") else sheet
                wav = view.ident("wav_path")
                score = view.score("score", LOW, HIGH)
                caption = view.text("caption")
                generator = view.ident("generator")
                head = first.get(wav)
                if head is not None:
                    for name, mine, theirs in (
                        ("caption", caption, head.texts["caption"]),
                        ("generator", generator, head.group),
                    ):
                        if mine != theirs:
                            raise view.error(
                                f"clip {wav!r}: {name} {mine!r} differs from {theirs!r} at its first row "
                                f"{head.meta['row']}; expected the same for every listener",
                                name,
                            )
                    collector.add(wav, score, rater, view.number, "listener_sheet")
                else:
                    item = Item(
                        id=wav,
                        audio=audio(wav, view, "wav_path"),
                        texts={"caption": caption},
                        group=generator,
                        meta={"row": view.number, "tempo": view.text("tempo", allow_empty=True)},
                    )
                    collector.add(wav, score, rater, view.number, "listener_sheet")
                    first[wav] = item
            except DataError as exc:
                errors.handle(exc)
        for wav, item in first.items():
            ratings = collector.ratings(wav)
            item.ratings["score"] = ratings
            item.targets["score"] = ratings.mean
        return list(first.values())
