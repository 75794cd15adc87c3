"""Builders of tiny random Hugging Face models saved to a folder, for tests.

Each ``make_tiny_*(folder)`` writes a model (random weights, fixed seed) plus its feature extractor
or tokenizer with ``save_pretrained`` and returns the folder, so tests load it through exactly the
code path a user's local checkpoint takes (``from_pretrained(folder)`` with HF_HUB_OFFLINE=1).
Every builder is idempotent: a folder that already holds a config.json is returned as is.
"""

from __future__ import annotations

import json
from pathlib import Path

WORDS = (
    "the a an is was be to of and in that it for on with as at by this from or not are have "
    "he she they we you i his her their our my your can will would should could do does did "
    "good bad great poor grammar speech sound music text score quality voice noise clean "
    "quick brown fox jumps over lazy dog cat sat mat sentence word words long short very "
    "people say said says make made time year day way thing man woman child world life hand "
    "part place case week company system program question work government number night point"
).split()


def _done(folder: Path) -> bool:
    return (folder / "config.json").is_file()


def make_tiny_wavlm(folder: str | Path, *, attention_mask: bool = False, seed: int = 0) -> Path:
    """A 2-layer WavLM (hidden 32). ``attention_mask=False`` is WavLM-base style (group norm in
    the first conv, feature extractor without attention masks); ``True`` is WavLM-large style
    (layer norm convs, masks returned)."""
    import torch
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMModel

    folder = Path(folder)
    if _done(folder):
        return folder
    torch.manual_seed(seed)
    config = WavLMConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        conv_dim=(32, 32, 32),
        conv_stride=(5, 4, 4),
        conv_kernel=(10, 4, 4),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer" if attention_mask else "group",
        do_stable_layer_norm=attention_mask,
        num_buckets=32,
        max_bucket_distance=80,
        vocab_size=10,
    )
    WavLMModel(config).eval().save_pretrained(folder)
    Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=attention_mask,
    ).save_pretrained(folder)
    return folder


def _tiny_whisper_tokenizer(folder: Path):
    """A byte-level BPE tokenizer with the Whisper special tokens, saved as a WhisperTokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import WhisperTokenizerFast

    byte_chars = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(byte_chars))}
    for w in WORDS:
        tok = "Ġ" + w
        if tok not in vocab:
            vocab[tok] = len(vocab)
    merges: list[tuple[str, str]] = []
    # words are single tokens after merging their characters step by step
    for w in WORDS:
        cur = "Ġ"
        for ch in w:
            nxt = cur + ch
            if nxt not in vocab:
                vocab[nxt] = len(vocab)
            if (cur, ch) not in merges:
                merges.append((cur, ch))
            cur = nxt
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = [
        "<|endoftext|>",
        "<|startoftranscript|>",
        "<|en|>",
        "<|de|>",
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nospeech|>",
        "<|notimestamps|>",
    ]
    fast = WhisperTokenizerFast(
        tokenizer_object=tok,
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    fast.add_special_tokens({"additional_special_tokens": specials[1:]})
    return fast, {s: fast.convert_tokens_to_ids(s) for s in specials}


def make_tiny_whisper(folder: str | Path, *, seed: int = 0) -> Path:
    """A 2+2-layer Whisper (d_model 32, 80 mel bins) with processor and generation config."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

    folder = Path(folder)
    if _done(folder):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer, ids = _tiny_whisper_tokenizer(folder)
    torch.manual_seed(seed)
    config = WhisperConfig(
        vocab_size=len(tokenizer),
        num_mel_bins=80,
        encoder_layers=2,
        encoder_attention_heads=2,
        decoder_layers=2,
        decoder_attention_heads=2,
        d_model=32,
        encoder_ffn_dim=37,
        decoder_ffn_dim=37,
        max_source_positions=1500,
        max_target_positions=64,
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"],
        decoder_start_token_id=ids["<|startoftranscript|>"],
        suppress_tokens=[],
        begin_suppress_tokens=[],
    )
    model = WhisperForConditionalGeneration(config).eval()
    gen = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"],
        eos_token_id=ids["<|endoftext|>"],
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"],
        is_multilingual=True,
        lang_to_id={"<|en|>": ids["<|en|>"], "<|de|>": ids["<|de|>"]},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        no_timestamps_token_id=ids["<|notimestamps|>"],
        suppress_tokens=[],
        begin_suppress_tokens=[],
    )
    model.generation_config = gen
    model.save_pretrained(folder)
    processor = WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer)
    processor.save_pretrained(folder)
    return folder


def _bert_tokenizer(folder: Path):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    # one id per token: "a" and "i" are words and letters, and a repeated token would leave a gap
    # in the ids (an id past the model's vocab_size)
    vocab_list = list(
        dict.fromkeys(specials + list(WORDS) + letters + ["##" + c for c in letters] + list(".,!?'\"-:;"))
    )
    vocab = {t: i for i, t in enumerate(vocab_list)}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return BertTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_max_length=512,
    )


def make_tiny_bert(folder: str | Path, *, max_position: int = 64, seed: int = 0) -> Path:
    """A 2-layer BERT (hidden 32) with a small WordPiece vocabulary (whole words + letters), saved
    with its tokenizer; ``max_position`` caps the model's input length (windows are tested with
    it)."""
    import torch
    from transformers import BertConfig, BertModel

    folder = Path(folder)
    if _done(folder):
        return folder
    tokenizer = _bert_tokenizer(folder)
    tokenizer.model_max_length = max_position
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=max_position,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    BertModel(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_tiny_sentence_transformer(folder: str | Path, *, max_seq_length: int = 32, seed: int = 0) -> Path:
    """A sentence-transformers folder (tiny BERT -> mean pooling -> normalize)."""
    folder = Path(folder)
    if (folder / "modules.json").is_file():
        return folder
    make_tiny_bert(folder, max_position=max(64, max_seq_length), seed=seed)
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": 32,
                "pooling_mode_mean_tokens": True,
                "pooling_mode_cls_token": False,
                "pooling_mode_max_tokens": False,
                "pooling_mode_mean_sqrt_len_tokens": False,
            }
        )
    )
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False})
    )
    (folder / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
            ]
        )
    )
    return folder


def make_tiny_clap(folder: str | Path, *, seed: int = 0) -> Path:
    """A tiny CLAP (HTSAT audio tower with 2 one-block stages, projection 16) with its feature
    extractor (48 kHz, 10 s, ``rand_trunc``: deterministic for clips of at most 10 s)."""
    import torch
    from transformers import ClapAudioConfig, ClapConfig, ClapFeatureExtractor, ClapModel, ClapTextConfig

    folder = Path(folder)
    if _done(folder):
        return folder
    audio = ClapAudioConfig(
        window_size=8,
        num_mel_bins=64,
        spec_size=256,
        patch_size=4,
        patch_stride=(4, 4),
        depths=[1, 1],
        num_attention_heads=[2, 2],
        patch_embeds_hidden_size=16,
        hidden_size=32,
        projection_dim=16,
        enable_fusion=False,
    )
    text = ClapTextConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=20,
        projection_dim=16,
        max_position_embeddings=40,
    )
    torch.manual_seed(seed)
    ClapModel(
        ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=16)
    ).eval().save_pretrained(folder)
    ClapFeatureExtractor(
        feature_size=64, sampling_rate=48000, max_length_s=10, truncation="rand_trunc"
    ).save_pretrained(folder)
    return folder
