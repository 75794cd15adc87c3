"""`scorecast serve` as a real uvicorn process on 127.0.0.1 (a free port): scoring, auth, limits,
and the server answering after every bad request; start-up keeps Lightning out of the process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from test_predict_support import audio_bundle, tone, wav_bytes

pytestmark = pytest.mark.slow

TOKEN = "process-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    bundle = audio_bundle(tmp_path_factory)
    port = free_port()
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    env = {**os.environ, "SCORECAST_TOKEN": TOKEN, "HF_HUB_OFFLINE": "1", "ORT_DISABLE_TELEMETRY": "1"}
    cmd = [
        sys.executable,
        "-m",
        "scorecast.cli",
        "serve",
        str(bundle),
        "--port",
        str(port),
        "--max-upload-mb",
        "0.25",
        "--max-duration-s",
        "2.5",
        "--timeout-s",
        "20",
        "--header-timeout-s",
        "1.5",
        "--body-timeout-s",
        "1.5",
        "--max-decoded-mb",
        "8",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    probe = httpx.Client(base_url=base, timeout=2)  # one client: polling must not steal CPU from the start-up
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"scorecast serve exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if probe.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"scorecast serve did not answer /healthz within 120 s:\n{log.read_text()}")
            time.sleep(0.3)
        with httpx.Client(base_url=base, timeout=30) as client:
            yield client, log
    finally:
        probe.close()
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _ok(client) -> None:
    assert client.get("/healthz").status_code == 200
    r = client.post("/score", files={"audio": ("ok.wav", wav_bytes(tone(1.0, 240)), "audio/wav")}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert 1.0 <= r.json()["scores"]["score"] <= 5.0


def test_real_server_scores_and_binds_loopback(server):
    client, log = server
    _ok(client)
    info = client.get("/model", headers=AUTH).json()
    assert info["inputs"] == {"audio": True, "text": [], "vectors": []}
    assert f"Uvicorn running on http://127.0.0.1:{client.base_url.port}" in log.read_text()


def test_real_server_refuses_bad_requests_and_keeps_answering(server):
    client, _ = server
    wav = wav_bytes(tone(1.0, 200))
    cases = [
        (client.post("/score", files={"audio": ("a.wav", wav, "audio/wav")}), 401),
        (client.get("/model", headers={"Authorization": "Bearer nope"}), 401),
        (
            client.post("/score", files={"audio": ("big.wav", wav_bytes(tone(9.0, 200)), "audio/wav")}, headers=AUTH),
            413,
        ),
        (
            client.post("/score", files={"audio": ("long.wav", wav_bytes(tone(3.0, 200)), "audio/wav")}, headers=AUTH),
            413,
        ),
        (client.post("/score", files={"audio": ("a.wav", b"GIF89a not audio at all", "audio/wav")}, headers=AUTH), 415),
        (
            client.post("/score", content=b'{"audio_base64": ', headers={**AUTH, "content-type": "application/json"}),
            422,
        ),
        (client.post("/score", json={"path": "/etc/passwd"}, headers=AUTH), 422),
    ]
    for response, status in cases:
        assert response.status_code == status, (response.request.url, response.text)
        _ok(client)


def test_serving_process_start_up_keeps_lightning_out(tmp_path_factory):
    bundle = audio_bundle(tmp_path_factory)
    code = (
        "import sys; from scorecast.inference.predictor import Predictor; from scorecast.serve.app import create_app;"
        f"create_app(predictor=Predictor.from_path({str(bundle)!r}));"
        "print(sorted(m for m in ('lightning', 'pytorch_lightning', 'sentence_transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _raw(port: int, first: bytes, wait_s: float) -> tuple[bytes, float]:
    """Send ``first`` on a loopback socket, then nothing; (what came back, seconds until the server closed)."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        sock.sendall(first)
        got = b""
        try:
            while chunk := sock.recv(4096):
                got += chunk
        except TimeoutError:
            pass
    return got, time.monotonic() - start


def test_slow_headers_and_a_trickled_body_get_408_about_the_upload(server):
    client, _ = server
    port = client.base_url.port
    got, took = _raw(port, b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Ty", wait_s=10)
    assert got.startswith(b"HTTP/1.1 408") and b"headers did not all arrive within 1.5 s" in got, got
    assert took < 6
    head = (
        f"POST /score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    got, took = _raw(port, head.encode() + b'{"text": ', wait_s=10)
    assert got.startswith(b"HTTP/1.1 408") and b"the upload did not arrive within" in got, got
    assert b"scoring took longer" not in got and took < 6
    _ok(client)


def test_a_small_upload_that_would_decode_huge_is_refused_from_its_header(server):
    import io

    import numpy as np
    import soundfile as sf

    client, _ = server
    buf = io.BytesIO()
    sf.write(buf, np.zeros((int(2.0 * 192000), 8), np.float32), 192000, format="FLAC")  # silence: tiny file
    assert len(buf.getvalue()) < 250_000
    r = client.post("/score", files={"audio": ("wide.flac", buf.getvalue(), "audio/flac")}, headers=AUTH)
    assert r.status_code == 413 and "8 channels at 192000 Hz" in r.json()["detail"], r.text
    _ok(client)
