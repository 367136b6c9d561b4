"""`cli.py serve-model` exposes only what Loupe needs of `transformers serve`: the real server on the bundled model,
behind `loupe.model_server.ModelProxy`. The admin routes (/load_model, /reset), other methods, form-shaped posts and
requests naming another host are refused; chat completions (streamed) and the model list still work; a host that
other machines reach is refused unless --allow-remote, which warns."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from haystack.dataclasses import StreamingChunk

from loupe.generators import choose_generator
from loupe.model_server import exposure_warning
from tests.test_generators import (  # noqa: F401  (fixtures)
    api_key,
    bundled_folder,
    collect,
    openai_settings,
    real_server,
    run_answer,
    streamed_text,
)


def request(url: str, method: str = "POST", body: bytes | None = b"{}", headers: dict | None = None):
    """(status, body) of one HTTP request, errors included."""
    sent = urllib.request.Request(url, data=body, method=method,
                                  headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(sent, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.slow
def test_the_admin_routes_are_refused_and_chat_completions_still_work(real_server, bundled_folder, api_key,
                                                                       tmp_path):
    root = real_server.base_url.removesuffix("/v1")
    load = json.dumps({"model": "/etc"}).encode()
    for path, body in (("/load_model", load), ("/reset", b"{}"), ("/v1/completions", b"{}"), ("/health", None),
                       ("/v1/chat/completions/../../reset", b"{}"), ("/v1/responses", b"{}")):
        status, answer = request(root + path, body=body, method="POST" if body is not None else "GET")
        assert status == 404, (path, status)
        assert "is not served here" in json.loads(answer)["error"]["message"]
    assert request(f"{root}/reset", method="DELETE")[0] == 501, "no other method"
    form = {"Content-Type": "application/x-www-form-urlencoded"}  # what a cross-site form posts
    assert request(f"{root}/reset", body=b"a=1", headers=form)[0] == 404
    assert request(f"{real_server.base_url}/chat/completions", body=b"a=1", headers=form)[0] == 415
    rebinding = {"Host": f"evil.example:{real_server.port}"}
    assert request(f"{real_server.base_url}/models", method="GET", body=None, headers=rebinding)[0] == 403

    status, models = request(f"{real_server.base_url}/models", method="GET", body=None)
    assert status == 200 and str(bundled_folder) in {model["id"] for model in json.loads(models)["data"]}
    settings = openai_settings(tmp_path, real_server.base_url, str(bundled_folder))
    chunks: list[StreamingChunk] = []
    result = run_answer(choose_generator(settings), settings, collect(chunks))
    reply = result["generator"]["replies"][0]
    assert reply.text.strip() and streamed_text(chunks) == reply.text
    assert len([chunk for chunk in chunks if chunk.content]) >= 3, "streamed through the proxy token by token"
    assert request(f"{real_server.backend_url}/reset")[0] == 200, "transformers serve has the route; the proxy hides it"


def test_serve_model_refuses_a_host_others_reach_unless_allowed(capsys, tmp_path):
    import cli

    assert cli.main(["serve-model", "--host", "0.0.0.0", "--model", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert "refuses to serve the address 0.0.0.0" in err and "--allow-remote" in err
    assert exposure_warning("127.0.0.1", allow_remote=False) is None
    assert exposure_warning("localhost", allow_remote=False) is None
    assert "every machine that reaches it" in exposure_warning("0.0.0.0", allow_remote=True)
    with pytest.raises(ValueError, match="--allow-remote"):
        exposure_warning("192.0.2.7", allow_remote=False)
