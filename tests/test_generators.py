"""The generators, for real: a tiny local transformers model, an OpenAI-compatible server on localhost, and the
fallback to the extractive answerer when either cannot be used.

Nothing here downloads anything: the causal LM is built from random weights in a temporary folder, and the
"OpenAI" server is a thread in this process.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from haystack import Document
from haystack.dataclasses import StreamingChunk

from components.extractive_answerer import ExtractiveAnswerer
from configuration.model_paths import apply_offline_mode
from configuration.settings import Settings
from loupe.generators import GeneratorChoice, choose_generator
from pipelines.answer import answer_inputs, build_answer_pipeline

QUESTION = "Which framework was used to train the detector?"
PASSAGES = [
    Document(
        content="The detector was trained with PyTorch on four GPUs for twelve hours.",
        meta={"title": "Methods", "doc_id": "methods", "page": 3},
    ),
    Document(
        content="Recordings were collected at dawn in three forests over two summers.",
        meta={"title": "Field data", "doc_id": "field"},
    ),
]

# What the fake OpenAI-compatible server answers, streamed in these pieces.
SERVER_REPLY_PIECES = ["The detector", " was trained", " with PyTorch", " [1]."]
SERVER_REPLY = "".join(SERVER_REPLY_PIECES)
API_KEY = "test-key-7f3a"

SPECIAL_TOKENS = ["<unk>", "<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|> {{ message['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


# ---------------------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline mode as configuration.model_paths.apply_offline_mode sets it, undone after the test."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A known generator API key; OPENAI_API_KEY removed so it cannot win; localhost never proxied."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("LOUPE_GENERATOR_API_KEY", API_KEY)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return API_KEY


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Llama (hidden size 32, 2 layers, 2 heads) with a word-level tokenizer and a chat template,
    saved like a hub model. Special tokens are suppressed in its generation config, so that what it streams
    (special tokens included) and what it replies (special tokens skipped) are the same text."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-llama")
    sentences = [QUESTION, SERVER_REPLY] + [passage.content for passage in PASSAGES] + [
        "You answer questions about scientific documents using only the numbered passages below.",
        "Cite the passages you use by their number.",
    ]
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(sentences, trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS))
    hf_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        additional_special_tokens=["<|user|>", "<|assistant|>"],
    )
    hf_tokenizer.chat_template = CHAT_TEMPLATE
    hf_tokenizer.save_pretrained(folder)

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(hf_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=hf_tokenizer.bos_token_id,
        eos_token_id=hf_tokenizer.eos_token_id,
        pad_token_id=hf_tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=hf_tokenizer.bos_token_id,
        eos_token_id=hf_tokenizer.eos_token_id,
        pad_token_id=hf_tokenizer.pad_token_id,
        suppress_tokens=sorted(hf_tokenizer.all_special_ids),
    )
    model.save_pretrained(folder)
    return folder


class FakeOpenAIServer:
    """`POST /v1/chat/completions` on 127.0.0.1, plain JSON or server-sent events; remembers every request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                elif body.get("stream"):
                    self._send_stream(body)
                else:
                    self._send_json(200, server.completion(body))

            def _send_json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _send_stream(self, body: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                for chunk in server.stream_chunks(body):
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    usage = {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": SERVER_REPLY},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": self.usage,
        }

    def stream_chunks(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {
                "id": "chatcmpl-test",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model", ""),
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
            }

        chunks = [chunk({"role": "assistant", "content": ""})]
        chunks += [chunk({"content": piece}) for piece in SERVER_REPLY_PIECES]
        chunks.append(chunk({}, finish_reason="stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append(
                {
                    "id": "chatcmpl-test",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": body.get("model", ""),
                    "choices": [],
                    "usage": self.usage,
                }
            )
        return chunks

    def start(self) -> FakeOpenAIServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def openai_server() -> Any:
    server = FakeOpenAIServer().start()
    yield server
    server.stop()


def closed_port() -> int:
    """A localhost port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def corpus_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Any]:
    """Two small Markdown papers ingested (with MiniLM embeddings) into an embedded store; the base settings."""
    from loupe.ingest import Ingester
    from loupe.stores import build_document_store, build_retrievers

    root = tmp_path_factory.mktemp("generators-corpus")
    papers = root / "papers"
    papers.mkdir()
    (papers / "detector.md").write_text(
        "# Bird song detector\n\nThe detector was trained with PyTorch on four GPUs for twelve hours. "
        "It reached an F1 score of 0.91 on the held-out recordings.\n",
        encoding="utf-8",
    )
    (papers / "reefs.md").write_text(
        "# Coral reef segmentation\n\nReef images were labelled by three divers. "
        "The segmentation network used a U-Net with a ResNet encoder.\n",
        encoding="utf-8",
    )
    settings = Settings(data_dir=root / "data", generator_kind="extractive").validate()
    store = build_document_store(settings)
    report = Ingester(settings, store).ingest([papers])
    assert report.exit_code == 0, report.summary()
    assert sorted(report.added) == ["detector", "reefs"]
    return settings, build_retrievers(settings, store)


def collect(chunks: list[StreamingChunk]):
    """A streaming callback that appends every chunk it receives to `chunks`."""

    def callback(chunk: StreamingChunk) -> None:
        chunks.append(chunk)

    return callback


def streamed_text(chunks: list[StreamingChunk]) -> str:
    assert chunks, "the streaming callback received no chunks"
    assert all(isinstance(chunk, StreamingChunk) for chunk in chunks)
    return "".join(chunk.content for chunk in chunks)


def run_answer(choice: GeneratorChoice, settings: Settings, callback: Any = None) -> dict[str, Any]:
    pipeline = build_answer_pipeline(settings.prompt_template, choice.component)
    return pipeline.run(
        answer_inputs(choice.component, QUESTION, PASSAGES, callback), include_outputs_from={"prompt_builder"}
    )


def assert_prompt_has_question_and_passages(prompt: str) -> None:
    assert f"Question: {QUESTION}" in prompt
    for number, passage in enumerate(PASSAGES, start=1):
        assert passage.content in prompt
        assert f"[{number}] {passage.meta['title']}" in prompt
    assert "(page 3)" in prompt


# ---------------------------------------------------------------------------------------------------------------
# transformers


class RecordingHfPipeline:
    """Wraps the Hugging Face pipeline inside TransformersChatGenerator and records the prompts it gets."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped
        self.prompts: list[Any] = []

    def __call__(self, prompt: Any, **kwargs: Any) -> Any:
        self.prompts.append(prompt)
        return self.wrapped(prompt, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


@pytest.mark.slow
def test_transformers_generator_loads_a_local_model_and_streams_its_answer(tiny_model_dir: Path, tmp_path: Path):
    from haystack_integrations.components.generators.transformers import TransformersChatGenerator

    settings = Settings(
        data_dir=tmp_path,
        generator_kind="transformers",
        generator_model=str(tiny_model_dir),
        generator_max_new_tokens=8,
    ).validate()
    apply_offline_mode(settings)

    choice = choose_generator(settings)

    assert choice.fallback_reason is None
    assert choice.kind == "transformers"
    assert choice.model == str(tiny_model_dir)
    assert isinstance(choice.component, TransformersChatGenerator)
    assert choice.component.pipeline is not None, "choose_generator must warm the model up"
    assert choice.describe() == {"kind": "transformers", "model": str(tiny_model_dir), "fallback_reason": None}

    recorder = RecordingHfPipeline(choice.component.pipeline)
    choice.component.pipeline = recorder
    chunks: list[StreamingChunk] = []
    result = run_answer(choice, settings, collect(chunks))

    reply = result["generator"]["replies"][0]
    assert reply.text and reply.text.strip(), "the tiny model generated nothing"
    assert streamed_text(chunks).strip() == reply.text.strip()
    assert reply.meta["model"] == str(tiny_model_dir)
    assert reply.meta["usage"]["completion_tokens"] == 8  # generator_max_new_tokens reached the model
    assert reply.meta["finish_reason"] == "length"

    prompt = result["prompt_builder"]["prompt"][0].text
    assert_prompt_has_question_and_passages(prompt)
    # the model saw that prompt through the tokenizer's chat template
    assert len(recorder.prompts) == 1
    sent = recorder.prompts[0]
    assert sent.startswith("<|user|> ") and sent.endswith("<|assistant|>")
    assert QUESTION in sent and PASSAGES[0].content in sent


@pytest.mark.slow
def test_asker_answers_with_the_transformers_generator(tiny_model_dir: Path, corpus_bundle):
    from loupe.qa import Asker

    base, bundle = corpus_bundle
    settings = base.replace(
        generator_kind="transformers", generator_model=str(tiny_model_dir), generator_max_new_tokens=8
    )
    asker = Asker(settings, bundle=bundle)
    assert asker.generator.kind == "transformers"

    chunks: list[StreamingChunk] = []
    fallbacks: list[str] = []
    answer = asker.ask(QUESTION, streaming_callback=collect(chunks), on_fallback=fallbacks.append)

    assert fallbacks == []
    assert answer.generator == {"kind": "transformers", "model": str(tiny_model_dir), "fallback_reason": None}
    assert answer.answer and streamed_text(chunks).strip() == answer.answer
    assert answer.passages[0]["doc_id"] == "detector"
    assert "The detector was trained with PyTorch on four GPUs" in answer.prompt
    assert f"Question: {QUESTION}" in answer.prompt


# ---------------------------------------------------------------------------------------------------------------
# fallback when the model cannot be loaded


@pytest.mark.parametrize("missing", ["local-path", "nobody/no-such-model"])
def test_missing_transformers_model_falls_back_to_extractive(missing: str, tmp_path: Path, offline: None):
    model = str(tmp_path / "models" / "no-such-model") if missing == "local-path" else missing
    settings = Settings(data_dir=tmp_path, generator_kind="transformers", generator_model=model).validate()
    apply_offline_mode(settings)

    started = time.perf_counter()
    choice = choose_generator(settings)
    elapsed = time.perf_counter() - started

    assert elapsed < 60, f"choose_generator took {elapsed:.0f}s; it must not wait on the network"
    assert choice.kind == "extractive"
    assert choice.model == "extractive"
    assert isinstance(choice.component, ExtractiveAnswerer)
    assert choice.fallback_reason is not None
    assert choice.fallback_reason.startswith("could not load transformers model")
    assert repr(model) in choice.fallback_reason
    assert choice.describe()["fallback_reason"] == choice.fallback_reason


# ---------------------------------------------------------------------------------------------------------------
# OpenAI-compatible server


def openai_settings(tmp_path: Path, base_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        generator_kind="openai",
        generator_base_url=base_url,
        generator_model="local-test",
        generator_max_new_tokens=8,
    ).validate()


def assert_chat_request(request: dict[str, Any], stream: bool) -> str:
    """Checks one recorded request to the fake server; returns the prompt it carried."""
    assert request["path"] == "/v1/chat/completions"
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert headers["authorization"] == f"Bearer {API_KEY}"
    body = request["body"]
    assert body["model"] == "local-test"
    assert bool(body.get("stream")) is stream
    assert body["max_tokens"] == 8
    assert body["temperature"] == 0
    assert len(body["messages"]) == 1
    message = body["messages"][0]
    assert message["role"] == "user"
    content = message["content"]
    if isinstance(content, list):  # content parts
        content = "".join(part.get("text", "") for part in content)
    return content


def test_openai_generator_streams_from_a_compatible_server(openai_server: FakeOpenAIServer, api_key: str, tmp_path):
    settings = openai_settings(tmp_path, openai_server.base_url)
    choice = choose_generator(settings)
    assert (choice.kind, choice.model, choice.fallback_reason) == ("openai", "local-test", None)
    assert openai_server.requests == [], "the server must only be contacted when a question is asked"

    chunks: list[StreamingChunk] = []
    result = run_answer(choice, settings, collect(chunks))

    reply = result["generator"]["replies"][0]
    assert reply.text == SERVER_REPLY
    assert streamed_text(chunks) == SERVER_REPLY
    assert [chunk.content for chunk in chunks if chunk.content] == SERVER_REPLY_PIECES
    assert reply.meta["model"] == "local-test"
    assert reply.meta["finish_reason"] == "stop"

    assert len(openai_server.requests) == 1
    sent_prompt = assert_chat_request(openai_server.requests[0], stream=True)
    assert_prompt_has_question_and_passages(sent_prompt)
    assert sent_prompt == result["prompt_builder"]["prompt"][0].text


def test_openai_generator_without_streaming(openai_server: FakeOpenAIServer, api_key: str, tmp_path):
    settings = openai_settings(tmp_path, openai_server.base_url)
    choice = choose_generator(settings)

    result = run_answer(choice, settings, callback=None)

    reply = result["generator"]["replies"][0]
    assert reply.text == SERVER_REPLY
    assert reply.meta["usage"]["total_tokens"] == 49
    assert len(openai_server.requests) == 1
    assert_prompt_has_question_and_passages(assert_chat_request(openai_server.requests[0], stream=False))


@pytest.mark.slow
def test_asker_answers_through_the_openai_server(openai_server: FakeOpenAIServer, api_key: str, corpus_bundle):
    from loupe.qa import Asker

    base, bundle = corpus_bundle
    settings = base.replace(
        generator_kind="openai", generator_base_url=openai_server.base_url, generator_model="local-test",
        generator_max_new_tokens=8,
    )
    asker = Asker(settings, bundle=bundle)
    chunks: list[StreamingChunk] = []
    fallbacks: list[str] = []

    answer = asker.ask(QUESTION, streaming_callback=collect(chunks), on_fallback=fallbacks.append)

    assert fallbacks == []
    assert answer.generator == {"kind": "openai", "model": "local-test", "fallback_reason": None}
    assert answer.answer == SERVER_REPLY
    assert streamed_text(chunks) == SERVER_REPLY
    assert len(openai_server.requests) == 1
    sent_prompt = assert_chat_request(openai_server.requests[0], stream=True)
    assert sent_prompt == answer.prompt
    assert f"Question: {QUESTION}" in sent_prompt
    assert "The detector was trained with PyTorch on four GPUs for twelve hours." in sent_prompt
    assert answer.passages[0]["doc_id"] == "detector"


@pytest.mark.slow
def test_unreachable_openai_server_falls_back_to_extractive_for_that_answer(api_key: str, corpus_bundle):
    from loupe.qa import Asker

    base, bundle = corpus_bundle
    port = closed_port()
    settings = base.replace(
        generator_kind="openai", generator_base_url=f"http://127.0.0.1:{port}/v1", generator_model="local-test"
    )
    asker = Asker(settings, bundle=bundle)
    assert asker.generator.kind == "openai"  # nothing is contacted before the question
    chunks: list[StreamingChunk] = []
    fallbacks: list[str] = []

    started = time.perf_counter()
    answer = asker.ask(QUESTION, streaming_callback=collect(chunks), on_fallback=fallbacks.append)
    elapsed = time.perf_counter() - started

    assert elapsed < 30, f"falling back took {elapsed:.0f}s"
    assert answer.generator["kind"] == "extractive"
    assert answer.generator["model"] == "extractive"
    reason = answer.generator["fallback_reason"]
    assert reason and reason.startswith("openai generator failed:")
    assert "Connection" in reason
    assert fallbacks == [reason]
    # the extractive answer quotes the passage that answers, with its number, and was streamed
    assert "The detector was trained with PyTorch on four GPUs for twelve hours. [1]" in answer.answer
    assert streamed_text(chunks) == answer.answer
    assert answer.passages[0]["doc_id"] == "detector"
    # the configured generator stays in place for the next question
    assert asker.generator.kind == "openai"
