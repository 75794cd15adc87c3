"""Codec MUSHRA ratings (Stahl et al., IEEE Access 2024): ``signal, condition, ratings,
participant_ids, file``, one row per (signal, condition), ``ratings`` and ``participant_ids``
lists written as text (``[41.0, 32.0]``; parsed as JSON or a Python literal, never ``eval``).

Items: id = ``{signal}:{condition}``, target ``score`` = the mean rating (0-100) with the per-listener
``Ratings``, ``group`` = the condition (the system), ``meta["signal"]`` = the signal (to group
folds by sentence). Audio is ``<audio_dir>/<file>`` (``audio_dir`` defaults to ``audio/`` beside
the table). The published CSV names ``stim_01/prop_13.wav`` while the folder may hold
``prop_13.flac``: where the named file is missing, the same stem with ``.flac``, ``.wav``, ``.ogg``
(then ``.mp3``) is used. Rows with an empty ``file`` (the hidden anchor, no audio) are left out
and listed in ``ItemSet.skipped`` unless ``include_no_audio`` (then ``audio=None``).

``reference`` (e.g. ``ref.flac``): the name of the unprocessed signal in each stimulus's folder; it is
attached as the named audio field ``reference`` (``item.audios["reference"]``, read by encoders with
input ``audio.reference``) for full-reference scoring. A folder without it is an error naming the row.
"""

from __future__ import annotations

from pathlib import Path

from scorecast.data.aggregate import make_ratings
from scorecast.data.items import Item
from scorecast.data.readers import READERS, Reader
from scorecast.data.table import RowErrors, base_dir_of, find_with_extensions, load_table, parse_score, resolve_path
from scorecast.errors import DataError

LOW, HIGH = 0.0, 100.0
COLUMNS = ["signal", "condition", "ratings", "participant_ids", "file"]
FALLBACK_EXTENSIONS = (".flac", ".wav", ".ogg", ".mp3")


@READERS.register("mushra")
class MushraReader(Reader):
    """Codec MUSHRA ratings (see the module docstring). ``check_audio`` (default true): a named audio
    file that cannot be found (under any of the extensions) is an error."""

    target_names = ["score"]

    def __init__(
        self,
        audio_dir: str | None = None,
        include_no_audio: bool = False,
        check_audio: bool = True,
        format: str | None = None,
        reference: str | None = None,
    ) -> None:
        self.audio_dir = audio_dir
        self.include_no_audio = bool(include_no_audio)
        self.check_audio = bool(check_audio)
        self.format = format
        self.reference = reference

    def _read(self, path: Path, errors: RowErrors) -> list[Item]:
        table = load_table(path, errors=errors, format=self.format)
        table.require(COLUMNS[:3] + ["file"], "a MUSHRA ratings table")
        base = Path(self.audio_dir).resolve() if self.audio_dir else base_dir_of(path) / "audio"
        has_ids = "participant_ids" in table.columns
        items = []
        for row in table.rows:
            view = table.view(row)
            try:
                signal, condition = view.ident("signal"), view.ident("condition")
                item_id = f"{signal}:{condition}"
                errors.claim_id(item_id, view.number, "condition")
                values = [parse_score(v, view, "ratings", LOW, HIGH) for v in view.list("ratings")]
                if not values:
                    raise view.error("empty ratings list: expected at least one rating", "ratings")
                raters = None
                if has_ids:
                    raters = [str(r) for r in view.list("participant_ids")]
                    if len(raters) != len(values):
                        raise view.error(
                            f"expected one participant id per rating, got {len(raters)} ids for {len(values)} ratings",
                            "participant_ids",
                        )
                    if len(set(raters)) != len(raters):
                        raise view.error("a participant id appears twice in the list", "participant_ids")
                ratings = make_ratings(values, raters)
                audio = None
                if view.missing("file"):
                    if not self.include_no_audio:
                        note = view.error(
                            f"{item_id!r} has no audio file (hidden anchor): left out "
                            "(include_no_audio: true keeps it with audio=None)",
                            "file",
                        )
                        errors.note(str(note))
                        continue
                else:
                    named = resolve_path(view.text("file"), base)
                    audio = find_with_extensions(named, FALLBACK_EXTENSIONS)
                    if audio is None:
                        if self.check_audio:
                            raise view.error(
                                f"audio file does not exist: {named} (nor with {', '.join(FALLBACK_EXTENSIONS)})",
                                "file",
                            )
                        audio = named
                audios = {}
                if self.reference is not None and audio is not None:
                    ref = find_with_extensions(str(Path(audio).parent / self.reference), FALLBACK_EXTENSIONS)
                    if ref is None:
                        raise view.error(
                            f"reference {self.reference!r} not found beside {audio} (option reference)", "file"
                        )
                    audios["reference"] = ref
            except DataError as exc:
                errors.handle(exc)
                continue
            items.append(
                Item(
                    id=item_id,
                    audio=audio,
                    audios=audios,
                    targets={"score": ratings.mean},
                    ratings={"score": ratings},
                    group=condition,
                    meta={"row": view.number, "signal": signal},
                )
            )
        return items
