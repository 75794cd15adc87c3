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
