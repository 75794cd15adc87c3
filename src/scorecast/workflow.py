"""Steps shared by training, prediction and the API: items in, items ready to encode out."""

from __future__ import annotations

from typing import Any

from scorecast.config import Recipe
from scorecast.data.items import ItemSet


def transcribe_if_needed(recipe: Recipe, items: ItemSet, cache: Any = None) -> int:
    """Run the recipe's ASR step (if any) on the items lacking its text field; returns how many
    were transcribed. Transcripts are cached by audio content, so reruns transcribe nothing."""
    if recipe.asr is None:
        return 0
    asr = recipe.asr
    todo = [item for item in items if asr.overwrite or not str(item.texts.get(asr.field) or "").strip()]
    if not todo:
        return 0
    from scorecast.encoders.asr import transcribe_items

    params = dict(asr.params)
    if asr.backend is not None:
        params["backend"] = asr.backend
    params["as_field"] = asr.field
    transcribe_items(todo, params, cache=cache)
    return len(todo)
