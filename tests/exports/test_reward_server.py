"""`python reward.py serve` as OpenRLHF uses it (issue: rewards a trainer can trust, §1): a burst
of single-completion requests, each on a fresh connection, all answered and judged in a few
batches; 127.0.0.1 by default; an optional bearer token; every odd request a 400 (or 401,
404, 405, 413) that says why, never a dropped connection."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import subprocess
from contextlib import contextmanager

import pytest

from tests.exports.helpers import fresh_env, litellm_only_python, quick_bundle, server_url
from tests.exports.scripted import ScriptedJudge, verdict

pytestmark = pytest.mark.django_db
TOKEN = "serve-token-0123456789"


@pytest.fixture(scope="module")
def python(tmp_path_factory):
    return litellm_only_python(tmp_path_factory.mktemp("serve") / "venv")


@pytest.fixture
def scripted():
    def answer(text, n):
        value = re.search(r"VALUE-(\d)", text)
        return verdict(int(value.group(1)) if value else 3)

    judge = ScriptedJudge(answer, latency_s=0.3)
    yield judge
    judge.close()


@contextmanager
def serving(python, bundle, *args, **env):
    server = subprocess.Popen([str(python), "-I", "reward.py", "serve", "--port", "0", *args],
                              cwd=bundle, env=fresh_env(**env), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        first = server.stdout.readline()
        base = server_url(server)
        yield first, base
    finally:
        server.terminate()
        server.wait(timeout=10)


def request(base, method, path, body=b"", headers=None):
    host, port = base.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


async def burst(base, n):
    """n single-completion requests at once, each on a connection of its own (as OpenRLHF
    sends them: a fresh client session per request)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)

    async def one(i):
        reader, writer = await asyncio.open_connection(host, int(port))
        body = json.dumps({"query": [f"Q{i}?A{i}. VALUE-{i % 5 + 1}"], "prompts": [f"Q{i}?"],
                           "labels": [""]}).encode()
        writer.write(b"POST /get_reward HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nConnection: close\r\nContent-Length: " + str(len(body)).encode()
                     + b"\r\n\r\n" + body)
        await writer.drain()
        raw = await reader.read()
        writer.close()
        head, _, payload = raw.partition(b"\r\n\r\n")
        return int(head.split()[1]), json.loads(payload)

    return await asyncio.gather(*(one(i) for i in range(n)))


def test_a_burst_of_fresh_connections_is_answered_in_a_few_batches(personas, scripted, python,
                                                                   tmp_path):
    bundle = quick_bundle(personas.project, tmp_path / "b", api_base=scripted.url,
                          concurrency=256)
    with serving(python, bundle) as (status_line, base):
        assert status_line.startswith(f"RubricLab judge {bundle.name}: UNCALIBRATED (")
        assert base.startswith("http://127.0.0.1:")  # this machine only, by default
        results = asyncio.run(burst(base, 512))
        assert [status for status, _ in results] == [200] * 512
        for i, (_, body) in enumerate(results):
            level = i % 5 + 1
            assert body["rewards"] == [(level - 1) / 4], i
            assert body["extra_logs"] == {"judge_failures": 0.0}
        status, health = request(base, "GET", "/health")
    assert status == 200 and health["stats"]["scored"] == 512
    # Micro-batching: 512 requests became far fewer judge batches.
    assert health["batches"] < 512 / 4, health["batches"]
    assert len(scripted.texts) == 512 * 2


def test_every_odd_request_gets_a_reason_and_the_token_is_required(personas, scripted, python,
                                                                   tmp_path):
    bundle = quick_bundle(personas.project, tmp_path / "b", api_base=scripted.url)
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with serving(python, bundle, "--host", "127.0.0.1", RUBRICLAB_SERVE_TOKEN=TOKEN,
                 RUBRICLAB_SERVE_MAX_BYTES="200000") as (_, base):
        status, health = request(base, "GET", "/health")
        assert status == 200 and health["status_line"].startswith("RubricLab judge ")
        good = json.dumps({"items": [{"prompt": "p", "completion": "c VALUE-5"}]})
        assert request(base, "POST", "/score", good)[0] == 401
        assert request(base, "POST", "/score", good, {"Authorization": "Bearer nope"})[0] == 401
        status, body = request(base, "POST", "/score", good, auth)
        assert status == 200 and body["rewards"] == [1.0]

        odd = {
            b"{not json": (400, "not JSON"),
            b"[" * 100_000: (400, "nests too deeply"),
            b'{"query": [' + b"9" * 5000 + b'], "prompts": ["p"]}': (400, "not JSON"),
            b"[]": (400, "must be a JSON object"),
            b'{"query": [1], "prompts": ["p"]}': (400, "must be strings"),
            b'{"query": ["pc"]}': (400, "prompts: a list"),
            b'{"query": ["xc"], "prompts": ["p"]}': (400, "does not start with prompts[0]"),
            b'{"query": ["pc"], "prompts": ["p"], "labels": [{"a": 1}]}': (400, "labels"),
            b'{"items": [{"prompt": NaN, "completion": "c"}]}': (400, "items[0].prompt"),
            b'{"items": {"prompt": "p"}}': (400, "items: a list"),
            b'{"query": ["p' + b"x" * 300_000 + b'"], "prompts": ["p"]}': (413, "over 200000"),
        }
        for body, (want, words) in odd.items():
            path = "/score" if b"items" in body else "/get_reward"
            status, answer = request(base, "POST", path, body, auth)
            assert (status, words in answer["error"]) == (want, True), (body[:60], answer)
        assert request(base, "GET", "/nope")[0] == 404
        assert request(base, "GET", "/score", headers=auth)[0] == 405

        # NUL and a lone surrogate (escaped in JSON) are judged as U+FFFD, not a crash.
        # (A completion that is only a lone surrogate is U+FFFD alone, which the runtime guard
        # answers with 0.0 without a call; with a letter beside it, it is judged.)
        status, body = request(base, "POST", "/score",
                               b'{"items": [{"prompt": "a\\u0000b", "completion": "x\\ud800"}]}',
                               auth)
        assert status == 200 and body["details"][0]["judge_failed"] is False
        assert any("a\ufffdb" in t and "x\ufffd" in t for t in scripted.texts)
        status, body = request(base, "POST", "/score",
                               b'{"items": [{"prompt": "q", "completion": "\\ud800"}]}', auth)
        assert status == 200 and body["rewards"] == [0.0]
        assert body["details"][0]["guarded"] == "punctuation only"

        # Chunked bodies, and several requests on one kept-alive connection.
        host, port = base.removeprefix("http://").rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        for _ in range(3):
            # An iterable body with no length: http.client sends it chunked.
            connection.request("POST", "/get_reward", body=iter([b'{"query": ["pc VALUE-1"], ',
                                                                 b'"prompts": ["p"]}']),
                               headers=auth)
            response = connection.getresponse()
            assert response.status == 200
            assert json.loads(response.read())["rewards"] == [0.0]
        connection.close()

        # curl's "Expect: 100-continue" gets its interim answer, not a second of waiting.
        import socket

        with socket.create_connection((host, int(port)), timeout=10) as sock:
            body = b'{"query": ["pc VALUE-3"], "prompts": ["p"]}'
            sock.sendall(b"POST /get_reward HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                         b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
            sock.sendall(body)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 OK") and b'"rewards": [0.5]' in answer


def test_serving_beyond_this_machine_without_a_token_warns(personas, scripted, python,
                                                           tmp_path):
    bundle = quick_bundle(personas.project, tmp_path / "b", api_base=scripted.url)
    server = subprocess.Popen([str(python), "-I", "reward.py", "serve", "--host", "0.0.0.0",
                               "--port", "0"], cwd=bundle, env=fresh_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        server_url(server)
    finally:
        server.terminate()
        _, err = server.communicate(timeout=10)
    assert "without RUBRICLAB_SERVE_TOKEN" in err
