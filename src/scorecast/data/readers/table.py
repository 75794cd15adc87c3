"""The generic ``table`` reader: any CSV/TSV/JSON/JSONL/Parquet table with a column mapping.

Options (recipe ``data.options`` or constructor keywords)::

    id: clip                      # id column (default "id"); null: the row number
    audio: path                   # audio path column, resolved relative to the table (or audio_dir)
    audio: {generated: gen, reference: ref} | [a, b]   # named audio fields (item.audios; input audio.<field>)
    text: caption | [a, b] | {field: column}
    vectors: emb | {field: column}   # cells holding lists of numbers ("[0.1, 0.2]" or "0.1 0.2")
    targets: mos | [a, b] | {column: target_name}
    ratings: scores | {column: target_name}  # cells holding per-rater lists ("[4, 5, 3]")
    raters: listener_ids          # cells holding the matching rater-id lists
    rater: listener               # long format: one row per (item, rater); scores in `targets`
    group: system
    meta: [col, ...]              # copied into item.meta
    labelled: false               # a table to score: targets, ratings, group, meta and rater columns
                                  # are read where present (``scorecast predict`` reads this way)

Mapping directions: ``text``/``vectors`` map a field name to its column; ``targets``/``ratings`` map
a column to its target name (a plain string keeps the column name as the target name; for ``ratings``
a plain string names the one target given in ``targets``, or "score").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scorecast.data.aggregate import RatingCollector, make_ratings
from scorecast.data.items import Item, Ratings
from scorecast.data.readers import READERS, Reader, as_field_map
from scorecast.data.table import (
    RowErrors,
    RowView,
    base_dir_of,
    file_exists,
    load_table,
    parse_score,
    resolve_path,
)
from scorecast.errors import ConfigError, DataError


@READERS.register("table")
class TableReader(Reader):
    """Reads any item table through a column mapping (see the module docstring)."""

    def __init__(
        self,
        id: str | None = "id",
        audio: str | list[str] | dict[str, str] | None = None,
        text: str | list[str] | dict[str, str] | None = None,
        vectors: str | list[str] | dict[str, str] | None = None,
        targets: str | list[str] | dict[str, str] | None = None,
        ratings: str | dict[str, str] | None = None,
        raters: str | None = None,
        rater: str | None = None,
        group: str | None = None,
        meta: str | list[str] | None = None,
        audio_dir: str | None = None,
        check_audio: bool = True,
        require_audio: bool = True,
        allow_empty_text: bool = False,
        labelled: bool = True,
        format: str | None = None,
        sep: str | None = None,
    ) -> None:
        self.id_col = id
        self.audio_fields = as_field_map("audio", audio) if isinstance(audio, (list, dict)) else {}
        if self.audio_fields:
            audio = None
        self.audio_col = audio
        self.texts = as_field_map("text", text)
        self.vectors = as_field_map("vectors", vectors)
        self.targets = as_field_map("targets", targets)
        if isinstance(ratings, str):
            only = list(self.targets.values())
            ratings = {ratings: only[0] if len(only) == 1 else "score"}
        self.ratings = as_field_map("ratings", ratings)
        for name, col in (("id", id), ("audio", audio), ("raters", raters), ("rater", rater), ("group", group)):
            if col is not None and not isinstance(col, str):
                raise ConfigError(f"option {name}: expected a column name, got {col!r}")
        if raters is not None and len(self.ratings) != 1:
            raise ConfigError("option raters: expected exactly one `ratings` column to go with it")
        if rater is not None and not self.targets:
            raise ConfigError("option rater (long format): expected `targets` naming the score column(s)")
        if rater is not None and self.ratings:
            raise ConfigError("options rater and ratings: give one (long format or list cells), not both")
        self.raters_col = raters
        self.rater_col = rater
        self.group_col = group
        self.meta_cols = list(as_field_map("meta", meta))
        self.audio_dir = audio_dir
        self.check_audio = bool(check_audio)
        self.require_audio = bool(require_audio)
        self.allow_empty_text = bool(allow_empty_text)
        self.labelled = bool(labelled)
        self.format = format
        self.sep = sep
        names: dict[str, None] = dict.fromkeys(self.targets.values())
        names.update(dict.fromkeys(self.ratings.values()))
        self.target_names = list(names)

    # -- one row ------------------------------------------------------------------------------

    def _row(self, view: RowView, base: Path) -> dict[str, Any]:
        rec: dict[str, Any] = {"row": view.number}
        rec["id"] = view.ident(self.id_col) if self.id_col else str(view.number)
        rec["audio"] = None
        if self.audio_col:
            if view.missing(self.audio_col):
                if self.require_audio:
                    raise view.error("empty audio path: expected a path (or set require_audio: false)", self.audio_col)
            else:
                audio = resolve_path(view.text(self.audio_col), base)
                if self.check_audio and not file_exists(audio):
                    raise view.error(f"audio file does not exist: {audio}", self.audio_col)
                rec["audio"] = audio
        rec["audios"] = {}
        for name, col in self.audio_fields.items():
            if view.missing(col):
                if self.require_audio:
                    raise view.error(f"empty audio path for audio field '{name}': expected a path", col)
                continue
            path = resolve_path(view.text(col), base)
            if self.check_audio and not file_exists(path):
                raise view.error(f"audio file does not exist: {path} (audio field '{name}')", col)
            rec["audios"][name] = path
        rec["texts"] = {f: view.text(c, self.allow_empty_text) for f, c in self.texts.items()}
        rec["vectors"] = {f: view.vector(c) for f, c in self.vectors.items()}
        rec["group"] = None if not self.group_col or view.missing(self.group_col) else view.ident(self.group_col)
        rec["meta"] = {c: view.raw(c) for c in self.meta_cols}
        scores: dict[str, float] = {}
        for col, name in self.targets.items():
            if view.missing(col) and not self.labelled:
                continue
            scores[name] = view.score(col)
        rec["scores"] = scores
        ratings: dict[str, Ratings] = {}
        for col, name in self.ratings.items():
            if view.missing(col) and not self.labelled:
                continue
            values = [parse_score(v, view, col) for v in view.list(col)]
            if not values:
                raise view.error("empty ratings list: expected at least one rating", col)
            raters = None
            if self.raters_col:
                raters = [str(r) for r in view.list(self.raters_col)]
                if len(raters) != len(values):
                    raise view.error(
                        f"expected one rater id per rating, got {len(raters)} ids for {len(values)} ratings",
                        self.raters_col,
                    )
                if len(set(raters)) != len(raters):
                    raise view.error("a rater appears twice in the rater-id list", self.raters_col)
            ratings[name] = make_ratings(values, raters)
        rec["ratings"] = ratings
        if self.rater_col:
            rec["rater"] = view.ident(self.rater_col)
        return rec

    # -- the table ----------------------------------------------------------------------------

    def _read(self, path: Path, errors: RowErrors) -> list[Item]:
        table = load_table(path, errors=errors, format=self.format, sep=self.sep)
        if not self.labelled:  # a table to score needs ids and inputs only
            return self._without_absent(table.columns)._read_table(path, table, errors)
        return self._read_table(path, table, errors)

    def _without_absent(self, columns) -> TableReader:
        """A copy that skips the group, meta and rater columns the table lacks (``labelled: false``)."""
        import copy

        reader = copy.copy(self)
        present = set(columns)
        for attr in ("group_col", "raters_col", "rater_col"):
            if getattr(reader, attr) not in present:
                setattr(reader, attr, None)
        reader.meta_cols = [c for c in self.meta_cols if c in present]
        if reader.raters_col is None and self.raters_col is not None:
            reader.ratings = {}
        return reader

    def _read_table(self, path: Path, table, errors: RowErrors) -> list[Item]:
        needed = [c for c in (self.id_col, self.audio_col, self.group_col, self.raters_col, self.rater_col) if c]
        needed += list(self.audio_fields.values()) + list(self.texts.values()) + list(self.vectors.values())
        needed += self.meta_cols
        needed += [c for c in list(self.targets) + list(self.ratings) if self.labelled or c in table.columns]
        table.require(list(dict.fromkeys(needed)), f"reader 'table' ({path.name})")
        base = Path(self.audio_dir).resolve() if self.audio_dir else base_dir_of(path)
        records = []
        for row in table.rows:
            try:
                records.append(self._row(table.view(row), base))
            except DataError as exc:
                errors.handle(exc)
        if self.rater_col:
            return self._long(records, errors)
        items = []
        for rec in records:
            try:
                errors.claim_id(rec["id"], rec["row"], self.id_col)
            except DataError as exc:
                errors.handle(exc)
                continue
            targets = dict(rec["scores"])
            for name, r in rec["ratings"].items():
                targets.setdefault(name, r.mean)
            items.append(_item(rec, targets, rec["ratings"]))
        return items

    def _long(self, records: list[dict[str, Any]], errors: RowErrors) -> list[Item]:
        """One row per (item, rater): aggregate the scores per item; the other fields must agree."""
        first: dict[str, dict[str, Any]] = {}
        collectors = {name: RatingCollector(errors.file) for name in self.targets.values()}
        for rec in records:
            try:
                head = first.get(rec["id"])
                if head is not None:
                    for key in ("audio", "audios", "texts", "group"):
                        if rec[key] != head[key]:
                            raise DataError(
                                f"item {rec['id']!r}: {key} differs from its first row {head['row']} "
                                f"({head[key]!r} there, {rec[key]!r} here); expected the same for every rater",
                                file=errors.file,
                                row=rec["row"],
                            )
                for name, score in rec["scores"].items():
                    collectors[name].add(rec["id"], score, rec["rater"], rec["row"], self.rater_col)
            except DataError as exc:
                errors.handle(exc)
                continue
            if head is None:
                first[rec["id"]] = rec
        items = []
        for item_id, rec in first.items():
            ratings = {name: c.ratings(item_id) for name, c in collectors.items() if item_id in c}
            items.append(_item(rec, {name: r.mean for name, r in ratings.items()}, ratings))
        return items


def _item(rec: dict[str, Any], targets: dict[str, float], ratings: dict[str, Ratings]) -> Item:
    return Item(
        id=rec["id"],
        audio=rec["audio"],
        audios=rec["audios"],
        texts=rec["texts"],
        vectors=rec["vectors"],
        targets=targets,
        ratings=ratings,
        group=rec["group"],
        meta={"row": rec["row"], **rec["meta"]},
    )
