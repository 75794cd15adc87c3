"""Load test of `scorecast serve` on 127.0.0.1: throughput and latency, micro-batching against batch size 1.

For each configuration a real server process is started (``python -m scorecast.cli serve BUNDLE
--port P``), warmed up, and sent a fixed number of requests by 8 concurrent clients (threads, one
keep-alive ``httpx.Client`` each, in this process: never in the server's); then it is stopped. On 4+
cores the server and the clients are pinned to separate cores (``split_cores``). Every request carries different content, so
the server's in-memory feature cache never answers for the encoder. Counted: wall time,
requests/s, p50/p95/p99 latency, errors (any non-200 answer or transport failure; goal none), and
the server's own batching counters (``GET /model``).

* text: a bundle with the real ``sentence`` encoder (the packaged all-MiniLM-L6-v2) on one text
  field and a ridge head, trained here on synthetic captions; requests are ``POST /score`` JSON.
* audio: a bundle with the ``egemaps`` encoder (openSMILE, CPU) and a ridge head, trained here on
  synthetic speech; requests upload a 5 s 16-bit WAV as multipart.

Each is run with micro-batching (``--max-batch 32 --batch-wait-ms 10``, the defaults) and with
``--max-batch 1``. Goal: micro-batching gives at least 2x the text throughput of batch size 1.
Bounded: fixed request counts, a per-configuration deadline, 127.0.0.1 only. Writes
bench/results/serve.json and serve.md.

    .venv/bin/python bench/bench_serve.py [--text-requests 960] [--audio-requests 48] [--clients 8]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
sys.path.insert(0, str(REPO / "src"))
from scorecast.serve.microbatch import DEFAULT_MAX_BATCH, DEFAULT_WAIT_MS  # noqa: E402  (light: no torch)

WORDS = (
    "a the one small large old young loud quiet red blue green bright dark dog cat bird horse child man woman car "
    "train river wind rain bell engine piano guitar drum voice crowd street forest kitchen barks sings runs rings "
    "plays falls blows passes speaks laughs slowly quickly softly loudly far near under over behind beside"
).split()


# ---------------------------------------------------------------------------- bundles


def captions(n: int, seed: int) -> list[str]:
    import numpy as np

    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(8, 16)))) + f" ({seed}-{i})" for i in range(n)]


def speech_clips(n: int, seconds: float, seed: int):
    from scorecast.demo.synth import make_voices, synth_speech

    voices = make_voices(4, seed=seed)
    return [synth_speech(voices[i % 4], seconds, seed=seed * 1000 + i) for i in range(n)]


def build_text_bundle(root: Path) -> Path:
    """Ridge on MiniLM sentence embeddings of 64 synthetic captions (score: a function of the words)."""
    import numpy as np

    from scorecast.api import Scorer
    from scorecast.data.items import Item, ItemSet

    texts = captions(64, seed=1)
    items = [
        Item(id=f"c{i}", texts={"caption": t}, targets={"score": float(np.clip(1 + len(t) / 20, 1, 5))})
        for i, t in enumerate(texts)
    ]
    recipe = {
        "name": "bench-text",
        "targets": [{"name": "score", "low": 1, "high": 5}],
        "encoders": [{"name": "sentence", "input": "text.caption"}],
        "model": {"head": {"name": "ridge"}},
        "training": {"early_stopping": None, "val_fraction": 0.0},
    }
    scorer = Scorer(recipe, cache_dir=root / "cache").fit(
        ItemSet(items, target_names=["score"]), out_dir=root / "run-text"
    )
    return Path(scorer.bundle_.path)


def build_audio_bundle(root: Path) -> Path:
    """Ridge on eGeMAPS of 16 synthetic speech clips (score: the level of added noise)."""
    import numpy as np
    import soundfile as sf

    from scorecast.api import Scorer
    from scorecast.data.items import Item, ItemSet

    clips = root / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    items = []
    for i, wave in enumerate(speech_clips(16, 2.0, seed=2)):
        level = 0.003 * i
        path = clips / f"s{i:02d}.wav"
        sf.write(path, wave + level * rng.standard_normal(wave.size).astype("float32"), 16000)
        items.append(Item(id=path.name, audio=str(path), targets={"score": float(5 - 60 * level)}))
    recipe = {
        "name": "bench-audio",
        "targets": [{"name": "score", "low": 1, "high": 5}],
        "encoders": [{"name": "egemaps", "input": "audio"}],
        "model": {"head": {"name": "ridge"}},
        "training": {"early_stopping": None, "val_fraction": 0.0},
    }
    scorer = Scorer(recipe, cache_dir=root / "cache").fit(
        ItemSet(items, target_names=["score"]), out_dir=root / "run-audio"
    )
    return Path(scorer.bundle_.path)


# ---------------------------------------------------------------------------- server process


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(port: int) -> bool:
    """Whether GET /healthz on 127.0.0.1:``port`` answers 200 (False while nothing listens)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def split_cores() -> tuple[set[int] | None, set[int] | None]:
    """(server CPUs, client CPUs): on 4+ cores the clients get a quarter of them (at least one) and the
    server the rest, so the load generator does not compete with the server; on fewer, no pinning
    (one core for each would halve the server), which the results note."""
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    if len(cores) < 4:
        return None, None
    n_clients = max(1, len(cores) // 4)
    return set(cores[n_clients:]), set(cores[:n_clients])


PINNING = split_cores()


class Server:
    """``scorecast serve`` in a subprocess on 127.0.0.1; ``url`` once /healthz answers."""

    def __init__(
        self, bundle: Path, *extra: str, log: Path, start_timeout_s: float = 180.0, python_flags: tuple[str, ...] = ()
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [
            sys.executable,
            *python_flags,
            "-m",
            "scorecast.cli",
            "serve",
            str(bundle),
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            *extra,
        ]
        self._log = open(log, "wb")
        t0 = time.perf_counter()
        server_cpus, _ = PINNING
        pin = (lambda: os.sched_setaffinity(0, server_cpus)) if server_cpus else None
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env=dict(os.environ), preexec_fn=pin
        )
        while not healthy(self.port):  # a cheap stdlib probe: polling must not steal CPU from the start-up
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {log}")
            if time.perf_counter() - t0 > start_timeout_s:
                self.stop()
                raise RuntimeError(f"server did not answer /healthz within {start_timeout_s:.0f} s; see {log}")
            time.sleep(0.05)
        self.ready_s = time.perf_counter() - t0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()


# ---------------------------------------------------------------------------- load


def load_test(url: str, requests: list[dict], clients: int, deadline_s: float) -> dict:
    """Send every request once from ``clients`` threads; returns latencies, errors and wall time."""
    import httpx

    todo: queue.Queue[tuple[int, dict]] = queue.Queue()
    for i, r in enumerate(requests):
        todo.put((i, r))
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + deadline_s

    def client() -> None:
        with httpx.Client(base_url=url, timeout=60.0) as http:
            while time.perf_counter() < stop_at:
                try:
                    _, req = todo.get_nowait()
                except queue.Empty:
                    return
                t = time.perf_counter()
                try:
                    resp = http.post(req["path"], **req["kwargs"])
                    ok, what = resp.status_code == 200, f"{resp.status_code}: {resp.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, what = False, f"{type(exc).__name__}: {exc}"
                elapsed = time.perf_counter() - t
                with lock:
                    if ok:
                        latencies.append(elapsed)
                    else:
                        errors.append(what)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    return {"latencies": latencies, "errors": errors, "wall_s": wall, "unsent": todo.qsize()}


def batching(url: str) -> dict:
    import httpx

    return httpx.get(f"{url}/model", timeout=30).json()["batching"]


def run_config(
    name: str, bundle: Path, requests: list[dict], warmup: list[dict], args, work: Path, *serve_args: str
) -> dict:
    import numpy as np

    server = Server(bundle, *serve_args, log=work / f"{name}.log")
    try:
        load_test(server.url, warmup, args.clients, args.deadline_s)
        before = batching(server.url)
        res = load_test(server.url, requests, args.clients, args.deadline_s)
        after = batching(server.url)
    finally:
        server.stop()
    lat = np.array(res["latencies"]) * 1000.0
    n_ok = len(res["latencies"])
    batches = after["batches"] - before["batches"]
    items = after["items"] - before["items"]
    return {
        "name": name,
        "serve_args": list(serve_args),
        "requests": len(requests),
        "completed": n_ok,
        "errors": len(res["errors"]) + res["unsent"],
        "error_examples": res["errors"][:3]
        + ([f"{res['unsent']} request(s) not sent before the deadline"] if res["unsent"] else []),
        "clients": args.clients,
        "wall_s": round(res["wall_s"], 3),
        "throughput_rps": round(n_ok / res["wall_s"], 2) if res["wall_s"] > 0 else None,
        "latency_ms": {k: round(float(np.percentile(lat, q)), 1) for k, q in (("p50", 50), ("p95", 95), ("p99", 99))}
        | {"mean": round(float(lat.mean()), 1), "max": round(float(lat.max()), 1)}
        if n_ok
        else {},
        "server_batches": batches,
        "mean_batch": round(items / batches, 2) if batches else None,
        "server_ready_s": round(server.ready_s, 2),
    }


def text_requests(texts: list[str]) -> list[dict]:
    return [{"path": "/score", "kwargs": {"json": {"text": {"caption": t}}}} for t in texts]


def audio_requests(n: int, seed: int, base) -> list[dict]:
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        wave = base[i % len(base)] + 1e-4 * rng.standard_normal(base[0].size).astype("float32")  # distinct bytes
        buf = io.BytesIO()
        sf.write(buf, wave, 16000, format="WAV", subtype="PCM_16")
        out.append(
            {"path": "/score", "kwargs": {"files": {"audio": (f"r{seed}-{i}.wav", buf.getvalue(), "audio/wav")}}}
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-requests", type=int, default=960)
    parser.add_argument("--audio-requests", type=int, default=48)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--audio-seconds", type=float, default=5.0)
    parser.add_argument(
        "--deadline-s", type=float, default=120.0, help="per configuration: stop sending after this long"
    )
    parser.add_argument(
        "--batch-wait-ms",
        type=float,
        default=DEFAULT_WAIT_MS,
        help=f"the micro-batching configurations' --batch-wait-ms (default: serve's own, {DEFAULT_WAIT_MS:g})",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    wait = f"{args.batch_wait_ms:g}"

    started = time.time()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        text_bundle = build_text_bundle(work / "text")
        audio_bundle = build_audio_bundle(work / "audio")
        base = speech_clips(8, args.audio_seconds, seed=3)
        texts = captions(args.text_requests, seed=7)
        warm_texts = text_requests(captions(2 * args.clients, seed=8))
        if PINNING[1]:  # the clients (this process) on their own cores, away from the server's
            os.sched_setaffinity(0, PINNING[1])
        configs = [
            run_config(
                "text, micro-batching",
                text_bundle,
                text_requests(texts),
                warm_texts,
                args,
                work,
                "--max-batch",
                str(DEFAULT_MAX_BATCH),
                "--batch-wait-ms",
                wait,
            ),
            run_config(
                "text, batch size 1", text_bundle, text_requests(texts), warm_texts, args, work, "--max-batch", "1"
            ),
        ]
        warm_audio = audio_requests(args.clients, 98, base)
        configs += [
            run_config(
                "audio 5 s, micro-batching",
                audio_bundle,
                audio_requests(args.audio_requests, 1, base),
                warm_audio,
                args,
                work,
                "--max-batch",
                str(DEFAULT_MAX_BATCH),
                "--batch-wait-ms",
                wait,
            ),
            run_config(
                "audio 5 s, batch size 1",
                audio_bundle,
                audio_requests(args.audio_requests, 1, base),
                warm_audio,
                args,
                work,
                "--max-batch",
                "1",
            ),
        ]
    speed = {
        kind: round(configs[i]["throughput_rps"] / configs[i + 1]["throughput_rps"], 2)
        if configs[i]["throughput_rps"] and configs[i + 1]["throughput_rps"]
        else None
        for kind, i in (("text", 0), ("audio", 2))
    }
    result = {
        "benchmark": "serve",
        "date": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": {
            "clients": args.clients,
            "text_requests": args.text_requests,
            "audio_requests": args.audio_requests,
            "audio_seconds": args.audio_seconds,
            "batch_wait_ms": args.batch_wait_ms,
            "max_batch": DEFAULT_MAX_BATCH,
            "text_encoder": "sentence (packaged all-MiniLM-L6-v2)",
            "audio_encoder": "egemaps (openSMILE eGeMAPSv02)",
            "head": "ridge",
            "pinning": {"server_cpus": sorted(PINNING[0]), "client_cpus": sorted(PINNING[1])}
            if PINNING[0]
            else "none (fewer than 4 cores: server and clients share them)",
        },
        "configs": configs,
        "speedup_micro_batching": speed,
        "goals": {
            "no_errors": all(c["errors"] == 0 for c in configs),
            "text_speedup_at_least_2x": speed["text"] is not None and speed["text"] >= 2.0,
        },
        "seconds": round(time.time() - started, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "serve.md").write_text(markdown(result))
    print(markdown(result))


def markdown(r: dict) -> str:
    s = r["settings"]
    lines = [
        "# scorecast serve: load test on 127.0.0.1",
        "",
        f"{r['date']}; {r['machine']['cpus']} CPUs, load average before/after "
        f"{r['machine']['load_average_before'][0]} / {r['machine']['load_average_after'][0]}; {s['clients']} concurrent clients; "
        f"micro-batching: --max-batch {s.get('max_batch', 32)} --batch-wait-ms {s.get('batch_wait_ms', 5):g}; "
        f"text: {s['text_encoder']}, audio ({s['audio_seconds']:g} s clips): {s['audio_encoder']}; head {s['head']}.",
        f"Clients run in the bench process, the server in its own; CPU pinning: {s.get('pinning', 'none')}.",
        "Written by bench/bench_serve.py.",
        "",
        "| configuration | requests | errors | wall s | req/s | p50 ms | p95 ms | p99 ms | mean batch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in r["configs"]:
        lat = c["latency_ms"] or {}
        lines.append(
            f"| {c['name']} | {c['requests']} | {c['errors']} | {c['wall_s']} | {c['throughput_rps']} | "
            f"{lat.get('p50')} | {lat.get('p95')} | {lat.get('p99')} | {c['mean_batch']} |"
        )
    sp, g = r["speedup_micro_batching"], r["goals"]
    lines += [
        "",
        f"Micro-batching throughput / batch size 1: text {sp['text']}x (goal >= 2x: {'met' if g['text_speedup_at_least_2x'] else 'NOT met'}), "
        f"audio {sp['audio']}x.",
        f"Errors: {'none' if g['no_errors'] else 'SOME (see serve.json error_examples)'}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
