"""Hostile load on `scorecast serve` (127.0.0.1 only): uploads that are small on the wire but huge once
decoded, clients that send half their headers or trickle their body, beside normal traffic.

One server process (an eGeMAPS + ridge audio bundle, trained here on synthetic speech) runs with
``--max-inflight-mb 256 --header-timeout-s 2 --body-timeout-s 2`` (the other limits at their
defaults). Two phases, side by side in the same run:

* ``normal``: N normal requests (a 2 s 16 kHz WAV each) from 4 client threads;
* ``hostile``: the same number of normal requests while, at the same time, W clients upload a
  20 s, 8-channel, 192 kHz silent FLAC (under 1 MB on the wire, 123 MB decoded; its header says so),
  H clients upload a legal but large 30 s stereo 48 kHz FLAC (decoded in blocks and scored), S clients open a connection and send half their headers, and S clients send the headers and then
  trickle the body a byte every 0.5 s.

A fourth phase runs the same wide uploads on a second server that lets them decode
(``--max-decoded-mb 1024``): block decoding (mix down and resample per 64 k frames) keeps its memory
bounded too.

Measured: latency of the normal requests (p50/p95) in both phases and their ratio; the answers the
hostile clients got (status codes) and how long the slow ones were held; the server's resident
memory (``/proc/PID/status`` VmRSS, sampled every 20 ms) idle and at its peak in each phase. The
stated bound: the peak stays under idle + ``--max-inflight-mb`` + 128 MiB of working memory. Every
phase has a fixed number of requests and a deadline, and the script stops the server itself.
Writes bench/results/hardening.json and hardening.md (with the machine's load average).

    .venv/bin/python bench/bench_hardening.py [--requests 40] [--wide 6] [--heavy 3] [--slow 10]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))
from bench_serve import Server, audio_requests, build_audio_bundle, load_test, speech_clips  # noqa: E402

INFLIGHT_MB = 256
WORKING_MB = 128
SLOW_TIMEOUT_S = 2.0


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


class RssSampler:
    """Peak resident memory of a process, sampled every ``every_s`` in a thread."""

    def __init__(self, pid: int, every_s: float = 0.02) -> None:
        self.pid, self.every_s, self.peak = pid, every_s, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except OSError:
                return
            time.sleep(self.every_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def wide_flac(seconds: float = 20.0, channels: int = 8, rate: int = 192000) -> bytes:
    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros((int(seconds * rate), channels), np.int16), rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def heavy_wav(seconds: float = 30.0, channels: int = 2, rate: int = 48000) -> bytes:
    """A legal but large upload: stereo 48 kHz noise (decoded and scored by the server)."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(5)
    buf = io.BytesIO()
    wave = (0.1 * rng.standard_normal((int(seconds * rate), channels))).astype(np.float32)
    sf.write(buf, wave, rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def half_headers(port: int, deadline_s: float) -> tuple[str, float]:
    """Send half a request's headers, then nothing; (the status line the server answered, seconds held)."""
    return _hold(port, b"POST /score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty", None, deadline_s)


def trickled_body(port: int, deadline_s: float) -> tuple[str, float]:
    """Send complete headers for a 200 kB upload, then one byte every 0.5 s."""
    head = (
        b"POST /score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 200000\r\n\r\n"
    )
    return _hold(port, head, b"x", deadline_s)


def _hold(port: int, first: bytes, drip: bytes | None, deadline_s: float) -> tuple[str, float]:
    start = time.monotonic()
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
        sock.sendall(first)
        while time.monotonic() - start < deadline_s:
            try:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                got += chunk
            except TimeoutError:
                if drip is not None:
                    try:
                        sock.sendall(drip)
                    except OSError:
                        break
            except OSError:
                break
    status = got.split(b"\r\n", 1)[0].decode(errors="replace") or "(closed without an answer)"
    return status, time.monotonic() - start


def upload_wide(url: str, data: bytes, name: str = "wide.flac") -> int:
    import httpx

    try:
        return httpx.post(f"{url}/score", files={"audio": (name, data, "audio/flac")}, timeout=120).status_code
    except httpx.HTTPError:
        return -1


def percentiles(latencies: list[float]) -> dict[str, float]:
    import numpy as np

    lat = np.array(latencies) * 1000.0
    if not len(lat):
        return {}
    return {"p50": round(float(np.percentile(lat, 50)), 1), "p95": round(float(np.percentile(lat, 95)), 1)}


def phase(server, base, args, seed: int, extra: dict) -> dict:
    """Normal traffic from 4 clients while the ``extra`` clients ({kind: [callables]}) run; the
    normal requests' latencies, what the extra clients got, and the server's peak RSS."""
    answers: dict[str, list] = {kind: [] for kind in extra}
    lock = threading.Lock()

    def runner(kind, fn):
        def go():
            value = fn()
            with lock:
                answers[kind].append(value)

        return threading.Thread(target=go)

    threads = [runner(kind, fn) for kind, fns in extra.items() for fn in fns]
    with RssSampler(server.proc.pid) as mem:
        for th in threads:
            th.start()
        res = load_test(server.url, audio_requests(args.requests, seed, base), 4, args.deadline_s)
        for th in threads:
            th.join(timeout=args.deadline_s)
    out = {
        "ok": len(res["latencies"]),
        "errors": len(res["errors"]) + res["unsent"],
        "error_examples": res["errors"][:3],
        "latency_ms": percentiles(res["latencies"]),
        "wall_s": round(res["wall_s"], 2),
        "peak_rss_mb": round(mem.peak, 1),
    }
    for kind, rows in answers.items():
        if rows and isinstance(rows[0], tuple):  # slow clients: (status line, seconds held)
            out[kind] = {
                "statuses": sorted({r[0] for r in rows}),
                "held_s_max": round(max(r[1] for r in rows), 2),
            }
        else:
            out[kind] = {"statuses": sorted(rows)}
    return out


def run(args) -> dict:
    import httpx

    with tempfile.TemporaryDirectory(prefix="bench-hardening-") as tmp:
        work = Path(tmp)
        bundle = build_audio_bundle(work / "audio")
        base = speech_clips(4, 2.0, seed=3)
        flac = wide_flac()
        heavy = heavy_wav()
        serve_args = (
            "--max-inflight-mb",
            str(INFLIGHT_MB),
            "--header-timeout-s",
            str(SLOW_TIMEOUT_S),
            "--body-timeout-s",
            str(SLOW_TIMEOUT_S),
        )
        server = Server(bundle, *serve_args, log=work / "serve.log")
        try:
            load_test(server.url, audio_requests(8, 90, base), 4, args.deadline_s)  # warm up
            time.sleep(1.0)
            idle = rss_mb(server.proc.pid)
            port, url = server.port, server.url
            phases = {
                "normal": phase(server, base, args, 91, {}),
                "hostile": phase(
                    server,
                    base,
                    args,
                    92,
                    {
                        "wide": [lambda: upload_wide(url, flac)] * args.wide,
                        "half_headers": [lambda: half_headers(port, 30.0)] * args.slow,
                        "trickled_body": [lambda: trickled_body(port, 30.0)] * args.slow,
                    },
                ),
                "heavy": phase(
                    server, base, args, 93, {"heavy": [lambda: upload_wide(url, heavy, "heavy.flac")] * args.heavy}
                ),
            }
            memory = httpx.get(f"{url}/model", timeout=30).json().get("memory", {})
        finally:
            server.stop()
        # the same wide uploads on a server that lets them decode: block decoding keeps memory bounded anyway
        server = Server(bundle, *serve_args, "--max-decoded-mb", "1024", log=work / "serve-wide.log")
        try:
            load_test(server.url, audio_requests(8, 94, base), 4, args.deadline_s)  # warm up
            time.sleep(1.0)
            idle_wide = rss_mb(server.proc.pid)
            url = server.url
            phases["wide decoded"] = phase(
                server, base, args, 95, {"wide": [lambda: upload_wide(url, flac)] * args.wide}
            )
            phases["wide decoded"]["idle_rss_mb"] = round(idle_wide, 1)
        finally:
            server.stop()
    bound = max(idle, idle_wide) + INFLIGHT_MB + WORKING_MB
    peak = max(p["peak_rss_mb"] for p in phases.values())
    n50 = phases["normal"]["latency_ms"].get("p50")
    ratios = {
        name: round(p["latency_ms"]["p50"] / n50, 2) if n50 and p["latency_ms"].get("p50") else None
        for name, p in phases.items()
        if name != "normal"
    }
    return {
        "requests_per_phase": args.requests,
        "wide_uploads": args.wide,
        "wide_upload_bytes": len(flac),
        "heavy_uploads": args.heavy,
        "heavy_upload_bytes": len(heavy),
        "slow_clients_each": args.slow,
        "limits": {
            "max_inflight_mb": INFLIGHT_MB,
            "header_timeout_s": SLOW_TIMEOUT_S,
            "body_timeout_s": SLOW_TIMEOUT_S,
        },
        "phases": phases,
        "p50_ratio_vs_normal": ratios,
        "rss_mb": {"idle": round(idle, 1), "peak": peak, "bound": round(bound, 1), "within_bound": bool(peak < bound)},
        "server_budget": memory,
    }


def markdown(res: dict) -> str:
    ph, m = res["phases"], res["rss_mb"]
    h = ph["hostile"]
    rows = [
        f"| {name} | {p['ok']} | {p['errors']} | {p['latency_ms'].get('p50')} | {p['latency_ms'].get('p95')} | "
        f"{res['p50_ratio_vs_normal'].get(name, 1.0)} | {p['peak_rss_mb']} |"
        for name, p in ph.items()
    ]
    lines = [
        "# Hostile load on scorecast serve (bench/bench_hardening.py)",
        "",
        f"Measured {res['when']} on {res['machine']}; load average before {res['load_before']}, "
        f"after {res['load_after']} (a shared machine: compare the phases of one run, not runs).",
        f"Server limits: {res['limits']}. Each phase: {res['requests_per_phase']} normal requests "
        "(a 2 s 16 kHz WAV each) from 4 clients, beside:",
        f"- hostile: {res['wide_uploads']} uploads of a {res['wide_upload_bytes'] / 1e6:.2f} MB FLAC (20 s, 8 channels, "
        f"192 kHz: 123 MB decoded), {res['slow_clients_each']} clients sending half their headers, "
        f"{res['slow_clients_each']} trickling a body a byte every 0.5 s;",
        f"- heavy: {res['heavy_uploads']} legal uploads of a {res['heavy_upload_bytes'] / 1e6:.1f} MB FLAC "
        "(30 s stereo 48 kHz noise), decoded in blocks and scored.",
        "",
        "| phase | normal ok | errors | p50 ms | p95 ms | p50 / normal | peak RSS MiB |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"- wide FLAC uploads answered: {h['wide']['statuses']}; heavy uploads answered: {ph['heavy']['heavy']['statuses']}",
        f"- wide decoded: a second server with --max-decoded-mb 1024 decodes the same {res['wide_uploads']} wide FLACs "
        f"(in blocks, mixed down, resampled): answered {ph['wide decoded']['wide']['statuses']}, idle RSS "
        f"{ph['wide decoded']['idle_rss_mb']} MiB, peak {ph['wide decoded']['peak_rss_mb']} MiB",
        f"- half headers: answered {h['half_headers']['statuses']}, held at most {h['half_headers']['held_s_max']} s",
        f"- trickled body: answered {h['trickled_body']['statuses']}, held at most {h['trickled_body']['held_s_max']} s",
        f"- RSS idle {m['idle']} MiB, peak {m['peak']} MiB; stated bound idle + {res['limits']['max_inflight_mb']} + "
        f"{WORKING_MB} = {m['bound']} MiB; within the bound: {m['within_bound']}",
        f"- the server's own budget counters: {res['server_budget']}",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--wide", type=int, default=6)
    parser.add_argument("--slow", type=int, default=10)
    parser.add_argument("--heavy", type=int, default=3)
    parser.add_argument("--deadline-s", type=float, default=120.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    load_before = [round(x, 2) for x in os.getloadavg()]
    res = run(args)
    res["load_before"] = load_before
    res["load_after"] = [round(x, 2) for x in os.getloadavg()]
    res["when"] = time.strftime("%Y-%m-%d %H:%M")
    res["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hardening.json").write_text(json.dumps(res, indent=2))
    (args.out / "hardening.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
