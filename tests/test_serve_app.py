"""The HTTP app in-process (fastapi TestClient): scoring, auth, limits, sniffing, errors, batching."""

from __future__ import annotations

import base64
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

import scorecast
from scorecast.errors import BundleError
from scorecast.inference.predictor import Predictor
from scorecast.serve.app import create_app
from test_predict_support import audio_bundle, sentence, text_bundle, tone, wav_bytes

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CAPTIONS = ["a cat sat on the mat", "the dog sang", "red bird under a green tree", "loud", "blue blue blue"]


@pytest.fixture(scope="module")
def text_path(tmp_path_factory):
    return text_bundle(tmp_path_factory)


@pytest.fixture(scope="module")
def audio_path(tmp_path_factory):
    return audio_bundle(tmp_path_factory)


@pytest.fixture(scope="module")
def text_client(text_path):
    app = create_app(str(text_path), token=TOKEN, max_upload_mb=0.05, batch_wait_ms=20, max_batch=8)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def audio_client(audio_path):
    app = create_app(str(audio_path), max_upload_mb=0.25, max_duration_s=2.5, batch_wait_ms=20)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _still_serving(client, headers=None, caption="still here"):
    assert client.get("/healthz").json() == {"status": "ok", "ready": True}
    r = client.post("/score", json={"text": {"caption": caption}}, headers=headers or AUTH)
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------- text scoring, auth


def test_score_json_matches_the_python_api_and_stays_in_range(text_client, text_path):
    expected = scorecast.load(text_path, cache=False).predict(text=CAPTIONS)
    for i, caption in enumerate(CAPTIONS):
        r = text_client.post("/score", json={"text": {"caption": caption}}, headers=AUTH)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body["scores"]) == {"MI", "TA"} and set(body["std"]) == {"MI", "TA"}
        np.testing.assert_allclose([body["scores"]["MI"], body["scores"]["TA"]], expected.mean[i], atol=1e-5)
        np.testing.assert_allclose([body["std"]["MI"], body["std"]["TA"]], expected.std[i], atol=1e-5)
        assert 1 <= body["scores"]["MI"] <= 5 and 0 <= body["scores"]["TA"] <= 10


def test_item_alone_and_inside_a_batch_score_the_same(text_client):
    singles = [text_client.post("/score", json={"texts": {"caption": c}}, headers=AUTH).json() for c in CAPTIONS]
    batch = text_client.post(
        "/score/batch", json=[{"id": f"x{i}", "text": {"caption": c}} for i, c in enumerate(CAPTIONS)], headers=AUTH
    )
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert [r["id"] for r in results] == [f"x{i}" for i in range(len(CAPTIONS))]
    for one, inside in zip(singles, results):
        np.testing.assert_allclose(list(one["scores"].values()), list(inside["scores"].values()), atol=1e-5)
    wrapped = text_client.post(
        "/score/batch", json={"items": [{"text": {"caption": c}} for c in CAPTIONS]}, headers=AUTH
    )
    np.testing.assert_allclose(
        [list(r["scores"].values()) for r in wrapped.json()["results"]],
        [list(r["scores"].values()) for r in results],
        atol=1e-5,
    )


def test_form_fields_score_like_json(text_client):
    by_json = text_client.post("/score", json={"text": {"caption": CAPTIONS[0]}}, headers=AUTH).json()
    multipart = text_client.post("/score", files={"caption": (None, CAPTIONS[0])}, headers=AUTH)
    urlencoded = text_client.post("/score", data={"text.caption": CAPTIONS[0]}, headers=AUTH)
    for r in (multipart, urlencoded):
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(list(r.json()["scores"].values()), list(by_json["scores"].values()), atol=1e-5)
    batch = text_client.post("/score/batch", files=[("caption", (None, c)) for c in CAPTIONS[:3]], headers=AUTH)
    assert batch.status_code == 200 and len(batch.json()["results"]) == 3


def test_concurrent_requests_share_batches(text_path):
    import concurrent.futures as cf

    app = create_app(str(text_path), batch_wait_ms=200, max_batch=16)
    with TestClient(app) as client:
        texts = [sentence(np.random.default_rng(i)) for i in range(12)]
        with cf.ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda t: client.post("/score", json={"text": {"caption": t}}), texts))
        stats = client.get("/model").json()["batching"]
    assert all(a.status_code == 200 for a in answers)
    assert stats["items"] == 12 and stats["largest_batch"] > 1 and stats["batches"] < 12


def test_auth_refuses_without_or_with_a_wrong_token_on_every_route_but_healthz(text_client):
    assert text_client.get("/healthz").status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        assert text_client.get("/model", headers=headers).status_code == 401
        assert text_client.get("/docs", headers=headers).status_code == 401
        assert text_client.get("/openapi.json", headers=headers).status_code == 401
        r = text_client.post("/score", json={"text": {"caption": "x"}}, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert text_client.post("/score/batch", json=[{"text": {"caption": "x"}}], headers=headers).status_code == 401
    _still_serving(text_client)


def test_model_and_docs_describe_the_scorer(text_client):
    info = text_client.get("/model", headers=AUTH).json()
    assert [t["name"] for t in info["targets"]] == ["MI", "TA"]
    assert info["inputs"] == {"audio": False, "text": ["caption"], "vectors": []}
    assert info["encoders"][0]["identity"]["name"] == "toy-caption"
    assert info["model_card"].startswith("# toy-caption")
    assert info["limits"]["max_upload_mb"] == 0.05
    spec = text_client.get("/openapi.json", headers=AUTH).json()
    assert {"/score", "/score/batch", "/model", "/healthz"} <= set(spec["paths"])
    assert "multipart/form-data" in spec["paths"]["/score"]["post"]["requestBody"]["content"]
    assert "swagger" in text_client.get("/docs", headers=AUTH).text.lower()


# ---------------------------------------------------------------- bad requests


@pytest.mark.parametrize(
    "body, match",
    [
        (b"{not json", "malformed JSON"),
        (b'{"text": {"caption": 3}}', "text.caption"),
        (b'{"audio": "/etc/passwd"}', "audio: Extra inputs are not permitted"),
        (
            b'{"text": {"title": "x"}}',
            "expected text 'caption'; got no text field\\(s\\) caption; unknown text field\\(s\\) title",
        ),
        (b'{"text": {"caption": "x"}, "texts": {"caption": "y"}}', "not both"),
        (b"[1, 2]", "Input should be a valid dictionary"),
    ],
)
def test_malformed_or_wrong_json_gets_422_and_the_server_keeps_answering(text_client, body, match):
    r = text_client.post("/score", content=body, headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 422
    import re

    assert re.search(match, r.json()["detail"]), r.json()
    _still_serving(text_client)


def test_batch_errors_name_the_item(text_client):
    r = text_client.post("/score/batch", json=[{"text": {"caption": "ok"}}, {"text": {}}], headers=AUTH)
    assert r.status_code == 200 and r.json()["errors"] == 1
    ok, bad = r.json()["results"]
    assert "scores" in ok and "error" not in ok
    assert bad["index"] == 1 and bad["status"] == 422 and bad["error"].startswith("item 1: expected text 'caption'")
    assert text_client.post("/score/batch", json=[], headers=AUTH).status_code == 422
    r = text_client.post("/score", content=b"caption=x", headers={**AUTH, "content-type": "text/plain"})
    assert r.status_code == 415
    _still_serving(text_client)


def test_oversized_body_gets_413_before_it_is_parsed(text_client):
    big = {"text": {"caption": "word " * 20000}}  # ~100 kB > 0.05 MiB
    assert text_client.post("/score", json=big, headers=AUTH).status_code == 413

    def chunks():  # no Content-Length: the limit is checked while reading
        for _ in range(40):
            yield b"x" * 4096

    r = text_client.post("/score", content=chunks(), headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 413 and "exceeds the limit" in r.json()["detail"]
    _still_serving(text_client)


class _Flaky:
    """A predictor stand-in: slow for one caption, broken for another, otherwise the real one."""

    def __init__(self, real: Predictor) -> None:
        self.real = real
        self.inputs = real.inputs

    def score_records(self, items):
        captions = [i.texts.get("caption") for i in items]
        if "slow" in captions:
            time.sleep(1.0)
        if "boom" in captions:
            raise RuntimeError("the model blew up")
        if "mismatch" in captions:
            raise BundleError("encoder gives vectors of size 3, the bundle was trained on size 12")
        return self.real.score_records(items)

    def describe(self):
        return self.real.describe()


def test_timeout_gets_504_and_an_internal_error_500_and_serving_goes_on(text_path):
    app = create_app(predictor=_Flaky(Predictor.from_path(text_path)), timeout_s=0.3, batch_wait_ms=0)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/score", json={"text": {"caption": "boom"}})
        assert r.status_code == 500 and "the model blew up" in r.json()["detail"]
        _still_serving(client, headers={})
        r = client.post("/score", json={"text": {"caption": "mismatch"}})
        assert r.status_code == 500 and r.json()["detail"].startswith("BundleError: encoder gives vectors of size 3")
        r = client.post("/score", json={"text": {"caption": "slow"}})
        assert r.status_code == 504 and "0.3 s" in r.json()["detail"]
        time.sleep(1.0)  # let the slow call finish in its thread
        _still_serving(client, headers={})


# ---------------------------------------------------------------- audio


def test_audio_upload_scores_like_the_python_api_on_the_same_samples(audio_client, audio_path):
    waves = [tone(1.0, 220), tone(1.5, 330, seed=3)]
    expected = scorecast.load(audio_path, cache=False).predict(audio=[(w, 16000) for w in waves])
    files = [wav_bytes(w, fmt="WAV") for w in waves]
    import io

    import soundfile as sf

    for i in range(len(files)):
        # FLOAT subtype keeps the samples exact, so HTTP and API see the same audio
        buf = io.BytesIO()
        sf.write(buf, waves[i], 16000, format="WAV", subtype="FLOAT")
        files[i] = buf.getvalue()
        r = audio_client.post("/score", files={"audio": (f"c{i}.wav", files[i], "audio/wav")})
        assert r.status_code == 200, r.text
        assert r.json()["std"] is None and r.json()["id"] == f"c{i}.wav"  # the upload's file name
        np.testing.assert_allclose(r.json()["scores"]["score"], expected.mean[i, 0], atol=1e-5)
    batch = audio_client.post(
        "/score/batch", files=[("audio", (f"c{i}.wav", f, "audio/wav")) for i, f in enumerate(files)]
    )
    assert batch.status_code == 200, batch.text
    assert [r["id"] for r in batch.json()["results"]] == ["c0.wav", "c1.wav"]
    np.testing.assert_allclose([r["scores"]["score"] for r in batch.json()["results"]], expected.mean[:, 0], atol=1e-5)
    encoded = audio_client.post("/score", json={"audio_base64": base64.b64encode(files[0]).decode()})
    np.testing.assert_allclose(encoded.json()["scores"]["score"], expected.mean[0, 0], atol=1e-5)
    flac = audio_client.post("/score", files={"audio": ("c.flac", wav_bytes(waves[0], fmt="FLAC"), "audio/flac")})
    assert flac.status_code == 200, flac.text


@pytest.mark.parametrize(
    "payload, status, match",
    [
        (b"this is plain text, not audio at all", 415, "got bytes that are not audio"),
        (b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00", 415, "MP4 audio, which is not supported"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt garbage-after-the-header", 422, "looks like WAV but cannot be decoded"),
        (wav_bytes(tone(3.0, 200)), 413, "3.0 s of audio exceeds the limit of 2.5 s"),
        (wav_bytes(tone(9.0, 200)), 413, "exceeds the limit of 262144 bytes"),
    ],
)
def test_bad_uploads_are_refused_and_the_server_keeps_answering(audio_client, payload, status, match):
    r = audio_client.post("/score", files={"audio": ("up.wav", payload, "audio/wav")})
    assert r.status_code == status, r.text
    assert match in r.json()["detail"]
    ok = audio_client.post("/score", files={"audio": ("ok.wav", wav_bytes(tone(1.0, 200)), "audio/wav")})
    assert ok.status_code == 200, ok.text


def test_audio_form_problems_get_422(audio_client):
    r = audio_client.post("/score", data={"audio": "/etc/passwd"})
    assert r.status_code == 422 and "expected a file upload" in r.json()["detail"]
    r = audio_client.post(
        "/score", files={"audio": ("a.wav", wav_bytes(tone(1.0, 200)), "audio/wav"), "caption": (None, "x")}
    )
    assert r.status_code == 422 and "unknown form field(s) caption" in r.json()["detail"]
    two = [("audio", ("a.wav", wav_bytes(tone(0.5, 200)), "audio/wav"))] * 2
    assert audio_client.post("/score", files=two).status_code == 422
    r = audio_client.post("/score", json={"audio_base64": "***"})
    assert r.status_code == 422 and "expected base64" in r.json()["detail"]
