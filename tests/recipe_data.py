"""Small data sets in each challenge's exact file format, for the recipe tests.

Every ``make_*`` writes into a folder it is given and returns the paths a recipe's ``--var`` needs.
Scores are a known function of what the generator put into the audio or text (plus noise), so a
model has something to learn, but the tests only rely on the file formats.

* :func:`make_xacle`: the XACLE per-listener lists (``train.txt``/``val.txt``, no header:
  ``listener_sheet, wav_path, score, generator, caption, tempo``), the ``*_mos.txt`` lists
  (``wav,caption,MOS``) and the audio at ``<audio>/<generator>/<split>/<n>.wav``.
* :func:`make_da5401`: ``train_data.json`` / ``test_data.json`` (a JSON list of records with
  ``metric_name, system_prompt, user_prompt, response[, score]``), ``metric_names.json`` and
  ``metric_name_embeddings.npy`` (names x D float32).
* :func:`make_musiceval`: the MusicEval-phase1 layout: ``sets/train_mos_list.txt`` and
  ``sets/dev_mos_list.txt`` (``audiomos2025-track1-S00X_P0YY.wav,MI,TA``, no header), ``wav/``,
  ``prompt_info.txt`` (tab-separated with the header ``id<TAB>text``, rows ``P001<TAB>...``) and
  ``demo_prompt_info.txt`` (the demo system's prompts, keyed by file name).
* :func:`make_shl`: ``train.csv`` (``filename,label``), ``train_with_transcripts.csv``
  (``filename,label,transcript``), ``test.csv`` (``filename``) and speech-like clips at
  ``audio/<filename>.wav``.
* :func:`make_stsb`: ``sts-train.csv`` / ``sts-test.csv`` (tab-separated, no header, quoting off,
  some rows with two trailing attribution fields).
* :func:`make_mushra`: ``ratings_formated_filtered.csv`` (``signal, condition, ratings,
  participant_ids, file``, a hidden anchor without audio) and FLAC audio named ``.wav`` in the table.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from scorecast.demo.synth import make_voices, synth_speech

SR = 16000


def write_wav(path: Path, wave: np.ndarray, sr: int = SR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(wave, dtype=np.float32), sr, subtype="PCM_16")
    return path


def music_clip(rng: np.random.Generator, seconds: float, quality: float, sr: int = SR) -> np.ndarray:
    """A short tonal clip: notes of a random scale with harmonics and a decaying envelope, a soft
    percussive tick on each beat, and white noise whose level falls as ``quality`` (0..1) rises."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    wave = np.zeros(n)
    tempo = rng.uniform(90, 150)
    beat = 60.0 / tempo
    root = rng.uniform(160, 320)
    scale = root * 2 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12]) / 12)
    start = 0.0
    while start < seconds:
        f = rng.choice(scale)
        seg = (t >= start) & (t < start + beat)
        local = t[seg] - start
        env = np.exp(-3.0 * local / beat)
        wave[seg] += env * sum(np.sin(2 * np.pi * f * k * local) / k for k in (1, 2, 3))
        tick = seg & (t < start + 0.02)
        wave[tick] += 0.5 * rng.normal(size=int(tick.sum()))
        start += beat
    wave /= np.max(np.abs(wave)) + 1e-9
    noise_level = 0.02 + 0.6 * (1.0 - quality)
    wave = 0.3 * wave + 0.3 * noise_level * rng.normal(size=n)
    return (wave / (np.max(np.abs(wave)) + 1e-9) * 0.8).astype(np.float32)


CAPTIONS = [
    "A dog barks while birds chirp in the distance",
    "Rain falls on a roof and thunder rumbles",
    "A man speaks, followed by a loud splash",
    "Piano music plays softly with a gentle melody",
    "An engine idles and then revs up",
    "People laugh and talk in a crowded room",
]


def make_xacle(
    root: Path, n_train: int = 24, n_val: int = 8, listeners: int = 3, seconds: float = 1.5, seed: int = 0
) -> dict[str, Path]:
    """XACLE lists under ``root/lists`` and audio under ``root/audio``; returns {"lists", "audio"}."""
    rng = np.random.default_rng(seed)
    lists, audio = root / "lists", root / "audio"
    lists.mkdir(parents=True, exist_ok=True)
    generators = [("tango", "tango"), ("audioldm2", "audioldm"), ("audiocaps", "natural")]
    for split, n in (("train", n_train), ("val", n_val)):
        rows, mos_rows = [], []
        for i in range(n):
            folder, generator = generators[i % len(generators)]
            rel = f"/{folder}/{'train' if split == 'train' else 'test'}/{1000 + i}.wav"
            quality = rng.uniform(0, 1)
            write_wav(audio / rel.lstrip("/"), music_clip(rng, seconds, quality))
            caption = CAPTIONS[i % len(CAPTIONS)]
            if i % 4 == 0:
                caption = caption.replace(",", ", then")  # captions with commas must be quoted
            tempo = ["no_tempo", "temporal"][i % 2]
            scores = np.clip(np.round(10 * quality + rng.normal(0, 1.5, listeners)), 0, 10).astype(int)
            for k, score in enumerate(scores):
                sheet = f"listener{(i + k) % 7:02d}_20241223{k:06d}-{i:03d}.csv"
                rows.append([sheet, rel, str(score), generator, caption, tempo])
            mos_rows.append([rel, caption, f"{scores.mean():.3f}"])
        _write_csv(lists / f"{split}.txt", rows)
        _write_csv(lists / f"{split}_mos.txt", mos_rows, header=["wav", "caption", "MOS"])
    return {"lists": lists, "audio": audio}


def _write_csv(path: Path, rows: list[list[str]], header: list[str] | None = None) -> None:
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        if header:
            writer.writerow(header)
        writer.writerows(rows)


METRICS = [
    "inclusivity/gender_inclusivity",
    "safety/harmful_content",
    "factuality/hallucination_rate",
    "style/conciseness",
    "helpfulness/task_completion",
    "tone/politeness",
]
TOPICS = [
    "cooking pasta",
    "the French revolution",
    "a python error",
    "planting tomatoes",
    "tax forms",
    "a job interview",
]


def make_da5401(root: Path, n_train: int = 40, n_test: int = 12, dim: int = 24, seed: int = 0) -> Path:
    """DA5401 files in ``root``; returns ``root``. Records match a metric (high score) or not (low)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "metric_names.json").write_text(json.dumps(METRICS))
    np.save(root / "metric_name_embeddings.npy", rng.normal(size=(len(METRICS), dim)).astype(np.float32))

    def record(i: int, labelled: bool) -> dict:
        m = int(rng.integers(len(METRICS)))
        topic = TOPICS[int(rng.integers(len(TOPICS)))]
        good = rng.uniform() < 0.7
        aspect = METRICS[m].split("/")[1].replace("_", " ")
        response = (
            f"Here is a careful answer about {topic} that respects {aspect}."
            if good
            else f"Whatever. {topic} is not worth explaining."
        )
        rec = {
            "metric_name": METRICS[m],
            "system_prompt": None if i % 5 == 0 else "You are a helpful assistant.",
            "user_prompt": f"Please tell me about {topic}.",
            "response": response,
        }
        if labelled:
            score = int(np.clip(round((9 if good else 3) + rng.normal(0, 1)), 0, 10))
            rec["score"] = f"{score}.0" if i % 3 == 0 else score  # numbers and numeric strings both occur
        return rec

    (root / "train_data.json").write_text(json.dumps([record(i, True) for i in range(n_train)], indent=1))
    (root / "test_data.json").write_text(json.dumps([record(i, False) for i in range(n_test)], indent=1))
    return root


PROMPTS = [
    "A calm piano piece, slow and gentle",
    "Upbeat electronic dance music with a heavy bass",
    "A sad violin melody in a minor key",
    "Jazz trio with brushed drums and walking bass",
    "Epic orchestral soundtrack with choir",
    "Lo-fi hip hop beat for studying",
    "Acoustic guitar folk song, bright and happy",
    "Ambient synth pads, dreamy and spacious",
]


def musiceval_name(system: int, prompt: int) -> str:
    return f"audiomos2025-track1-S{system:03d}_P{prompt:03d}.wav"


DEMO_SYSTEM = 13
DEMO_PROMPTS = ["Demo: a marching band in the rain", "Demo: whistling over a ukulele"]


def make_musiceval(
    root: Path, systems: int = 4, prompts: int = 8, dev_prompts: int = 2, seconds: float = 1.5, seed: int = 0
) -> Path:
    """MusicEval-phase1 layout in ``root``; each system renders each prompt once, and the demo
    system ``S013`` renders two prompts of its own, whose texts ``demo_prompt_info.txt`` keys by
    file name (``id<TAB>text``, ids like ``audiomos2025-track1-S013_P001.wav``). Returns ``root``."""
    rng = np.random.default_rng(seed)
    (root / "sets").mkdir(parents=True, exist_ok=True)
    quality = {s: 0.2 + 0.6 * s / max(systems - 1, 1) for s in range(1, systems + 1)}
    quality[DEMO_SYSTEM] = 0.5
    train, dev = [], []
    demo = [(DEMO_SYSTEM, p) for p in range(1, len(DEMO_PROMPTS) + 1)]
    for s, p in demo:
        name = musiceval_name(s, p)
        write_wav(root / "wav" / name, music_clip(rng, seconds, quality[s]))
        train.append(f"{name},{1 + 4 * quality[s]:.1f},{rng.uniform(1, 5):.1f}")
    for s in range(1, systems + 1):
        for p in range(1, prompts + dev_prompts + 1):
            name = musiceval_name(s, p)
            q = float(np.clip(quality[s] + rng.normal(0, 0.1), 0, 1))
            write_wav(root / "wav" / name, music_clip(rng, seconds, q))
            mi = float(np.clip(1 + 4 * q + rng.normal(0, 0.3), 1, 5))
            ta = float(np.clip(mi + rng.normal(0, 0.5), 1, 5))
            (train if p <= prompts else dev).append(f"{name},{mi:.1f},{ta:.1f}")
    (root / "sets" / "train_mos_list.txt").write_text("\n".join(train) + "\n")
    (root / "sets" / "dev_mos_list.txt").write_text("\n".join(dev) + "\n")
    lines = ["id\ttext"] + [f"P{p:03d}\t{PROMPTS[(p - 1) % len(PROMPTS)]}" for p in range(1, prompts + dev_prompts + 1)]
    (root / "prompt_info.txt").write_text("\n".join(lines) + "\n")
    lines = ["id\ttext"] + [f"{musiceval_name(s, p)}\t{DEMO_PROMPTS[p - 1]}" for s, p in demo]
    (root / "demo_prompt_info.txt").write_text("\n".join(lines) + "\n")
    return root


SENTENCES = [
    "I like to visit my grandmother on the weekend because she cooks very well.",
    "My favourite hobby are reading books and play football with friend.",
    "Yesterday I go to the market and buyed some vegetable.",
    "The city where I live has many parks, and people enjoy walking there in the evening.",
    "He don't like the weather here because it rain every days.",
    "If I had more time, I would learn to play the piano and travel around the world.",
]


def make_shl(root: Path, n: int = 24, n_test: int = 6, seconds: float = 1.2, seed: int = 0) -> Path:
    """SHL grammar layout in ``root`` (tables + ``audio/<filename>.wav``); returns ``root``."""
    rng = np.random.default_rng(seed)
    voices = make_voices(4, seed=seed)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    rows, test = [], []
    for i in range(n + n_test):
        name = f"audio_{i + 1}"
        write_wav(root / "audio" / f"{name}.wav", synth_speech(voices[i % 4], seconds, seed=seed * 1000 + i))
        if i >= n:
            test.append([name])
            continue
        text = SENTENCES[i % len(SENTENCES)]
        good = text.count(",") + (0 if any(w in text for w in ("don't like", "buyed", "are reading")) else 2)
        label = float(np.clip(np.round(2 * (1.5 + 0.8 * good + rng.normal(0, 0.3))) / 2, 1, 5))
        rows.append([name, f"{label:.1f}", text])
    _write_csv(root / "train.csv", [r[:2] for r in rows], header=["filename", "label"])
    _write_csv(root / "train_with_transcripts.csv", rows, header=["filename", "label", "transcript"])
    _write_csv(root / "test.csv", test, header=["filename"])
    return root


PAIRS = [
    ("A man is playing a guitar.", "A man plays the guitar.", 4.8),
    ("A woman is slicing an onion.", "A woman cuts an onion.", 4.2),
    ("A dog runs in the park.", "A cat sleeps on the sofa.", 0.6),
    ("The stock market fell sharply today.", "Shares dropped steeply on Monday.", 3.6),
    ('He said "hello" to the crowd.', "He greeted the people.", 3.0),
    ("Kids are playing football.", "Children play soccer outside.", 4.0),
    ("The train is late again.", "A plane lands at the airport.", 1.0),
    ("She is reading a book.", "A woman reads a novel.", 4.4),
]


def make_stsb(root: Path, n_train: int = 32, n_test: int = 12, seed: int = 0) -> Path:
    """STS-B files (``sts-train.csv``, ``sts-dev.csv``, ``sts-test.csv``: tab-separated, no header, quoting off:
    genre, file, year, id, score, sentence1, sentence2, and on some rows two attribution fields)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("dev", n_test), ("test", n_test)):
        lines = []
        for i in range(n):
            s1, s2, score = PAIRS[i % len(PAIRS)]
            score = float(np.clip(score + rng.normal(0, 0.3), 0, 5))
            genre, file = ("main-captions", "MSRvid") if i % 2 else ("main-news", "headlines")
            # ids are file-year-number: dev numbers differ from train's, as in the real files
            number = f"{i + 1:04d}" if split != "dev" else f"{5000 + i:04d}"
            fields = [genre, file, "2012test", number, f"{score:.3f}", s1, s2]
            if i % 5 == 0:
                fields += ["attribution-a", "attribution-b"]
            lines.append("\t".join(fields))
        (root / f"sts-{split}.csv").write_text("\n".join(lines) + "\n")
    return root


CONDITIONS = ["Reference", "Anchor", "Proposed 1.38", "Proposed 1.38 16kHz", "EnCodec 6", "Lyra 6"]


def make_mushra(root: Path, signals: int = 4, seconds: float = 1.5, seed: int = 0) -> Path:
    """A codec MUSHRA set: ``ratings_formated_filtered.csv`` (``signal, condition, ratings,
    participant_ids, file``; lists written as ``[41.0, 32.0]``; the hidden ``Anchor`` row has an
    empty ``file``) and 24 kHz FLAC audio at ``audio/stim_XX/<name>.flac`` while the table names
    ``<name>.wav``, as the published set does. Ratings fall with the noise each condition adds."""
    from scorecast.demo.impairments import add_noise

    rng = np.random.default_rng(seed)
    voices = make_voices(signals, seed=seed)
    rows = []
    for s in range(signals):
        signal = f"VCTK_p{225 + s}_{100 + s:03d}"
        clean = synth_speech(voices[s], seconds, seed=seed * 100 + s, sr=24000)
        participants = sorted(rng.choice(np.arange(1, 25), size=5, replace=False).tolist())
        for c, condition in enumerate(CONDITIONS):
            snr = 40.0 - 7.0 * c
            ratings = np.clip(100 - 15 * c + rng.normal(0, 8, len(participants)), 0, 100).round()
            file = ""
            if condition != "Anchor":
                # the published set names each signal's unprocessed reference ref.flac
                stem = "ref" if condition == "Reference" else condition.lower().replace(" ", "_").replace(".", "")
                wave = clean if condition == "Reference" else add_noise(clean, snr, rng=c)
                sf.write(str(_mkdir(root / "audio" / f"stim_{s + 1:02d}") / f"{stem}.flac"), wave, 24000)
                file = f"stim_{s + 1:02d}/{stem}.wav"
            rows.append([signal, condition, str([float(r) for r in ratings]), str(participants), file])
    _write_csv(
        root / "ratings_formated_filtered.csv",
        rows,
        header=["signal", "condition", "ratings", "participant_ids", "file"],
    )
    return root


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def make_yourtts(root: Path, speakers: int = 4, clips: int = 3, seconds: float = 1.0, seed: int = 0) -> Path:
    """A YourTTS listening-test folder: ``ratings/naturalness-MOS.csv`` and ``ratings/Sim-MOS.csv``
    (``audio_path,score,evaluator_id``, one row per clip and listener; Sim cells hold
    ``"generated, reference"``) naming ``.wav`` files, and 16 kHz FLAC audio at ``audio/<same path>.flac``.
    Two systems (``Exp.1/model/S``, ``Exp.2/model/S``, the second noisier) plus ground truth
    ``GT/MLS-PT/<speaker>/``; 8 listeners with their own biases, 4 per clip."""
    from scorecast.demo.impairments import add_noise

    rng = np.random.default_rng(seed)
    voices = make_voices(speakers, seed=seed)
    bias = np.linspace(-0.8, 0.8, 8)
    nat, sim = [], []
    for s in range(speakers):
        spk = str(11000 + s)
        ref = f"reference/{spk}_ref.wav"
        sf.write(
            str(_mkdir(root / "audio" / "reference") / f"{spk}_ref.flac"),
            synth_speech(voices[s], seconds, seed=500 + s),
            SR,
        )
        for system, snr in (("Exp.1/model/S", 30.0), ("Exp.2/model/S", 8.0), (f"GT/MLS-PT/{spk}", 45.0)):
            for c in range(clips):
                rel = f"{system}/{spk}_{c}.wav"
                wave = add_noise(synth_speech(voices[s], seconds, seed=seed * 100 + 10 * s + c), snr, rng=c)
                sf.write(str(_mkdir(root / "audio" / system) / f"{spk}_{c}.flac"), wave, SR)
                quality = 1.5 + 3.0 * (snr / 45.0)
                for who in rng.choice(8, size=4, replace=False):
                    score = float(np.clip(np.round(quality + bias[who] + rng.normal(0, 0.4)), 1, 5))
                    nat.append([rel, str(score), str(9000 + who)])
                    sim.append(
                        [f"{rel}, {ref}", str(float(np.clip(score - 1 + rng.integers(0, 2), 1, 5))), str(9000 + who)]
                    )
    header = ["audio_path", "score", "evaluator_id"]
    _mkdir(root / "ratings")
    _write_csv(root / "ratings" / "naturalness-MOS.csv", nat, header=header)
    _write_csv(root / "ratings" / "Sim-MOS.csv", sim, header=header)
    return root
