"""Loupe's command line: `python cli.py --help`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from configuration.settings import RETRIEVAL_MODES, SettingsError, load_settings
from review.access import ROLES
from review.errors import ReviewError


def _progress_printer(verb: str):
    """A progress line on stderr: rewritten in place on a terminal, one line per step otherwise."""
    interactive = sys.stderr.isatty()

    def show(done: int, total: int, current: str) -> None:
        width = len(str(total))
        line = " ".join(part for part in (f"[{done:>{width}}/{total}]", verb, current) if part)
        if interactive:
            sys.stderr.write("\r\033[K" + line + ("\n" if done == total else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    return show


def _operator():
    """Who the command line acts as: an admin under LOUPE_ANNOTATOR or the login name. Whoever can run it can
    open the database (the data directory or DATABASE_URL) directly, so roles add nothing here."""
    from review.access import Principal, local_user_name

    return Principal(local_user_name(), "admin")


def _sessions():
    from review.db import open_database

    return open_database(load_settings())


def cmd_ingest(args: argparse.Namespace) -> int:
    from loupe.ingest import Ingester
    from loupe.stores import build_document_store

    settings = load_settings()
    ingester = Ingester(settings, build_document_store(settings))
    report = ingester.ingest(args.paths, progress=_progress_printer("ingesting"))
    return _finish(report, FAILED=report.failures)


def _finish(report, **problems: list) -> int:
    """Every problem on stderr under its label (FAILED, SKIPPED), the summary on stdout; the report's exit code."""
    for label, items in problems.items():
        for item in items:
            print(f"{label} {item}", file=sys.stderr)
    print(report.summary())
    return report.exit_code


def cmd_ask(args: argparse.Namespace) -> int:
    from loupe.qa import Asker

    settings = load_settings()
    if args.top_k is not None and args.top_k < 1:
        raise SettingsError(f"--top-k must be at least 1, got {args.top_k}")
    asker = Asker(settings)
    if asker.generator.fallback_reason:
        print(f"NOTE: using the extractive answerer: {asker.generator.fallback_reason}", file=sys.stderr)
    unknown = _unknown_documents(asker.bundle.store, args.doc or [])
    if unknown:
        print(f"error: unknown document id(s): {', '.join(unknown)} (see `python cli.py docs`)", file=sys.stderr)
        return 2
    stream = None if args.json else _print_stream
    answer = asker.ask(
        args.question, doc_ids=args.doc, mode=args.mode, top_k=args.top_k, streaming_callback=stream,
        on_fallback=lambda reason: print(f"\nNOTE: using the extractive answerer: {reason}", file=sys.stderr),
        with_support=args.support,
    )
    if answer.context_note:  # in the JSON too, as context_note; after a streamed answer, on a line of its own
        print(("" if args.json else "\n") + f"NOTE: context cut: {answer.context_note}", file=sys.stderr)
    if answer.generator.get("answer_cut"):  # the whole output is in --json as generator.raw_output
        print(f"NOTE: answer cut: {answer.generator['answer_cut']} (the model's whole output: generator.raw_output "
              "in --json)", file=sys.stderr)
    support = answer.support
    if args.json:
        print(json.dumps(answer.to_json(), ensure_ascii=False))
        return 0
    if stream is None or not answer.answer:
        print(answer.answer)
    print(f"\n\n-- generator: {answer.generator['kind']} ({answer.generator['model']}); "
          f"retrieval {answer.timings['retrieval_ms']:.0f} ms, generation {answer.timings['generation_ms']:.0f} ms")
    for number, passage in enumerate(answer.passages, start=1):
        ranks = ", ".join(f"{name} #{rank}" for name, rank in passage["ranks"].items() if rank is not None)
        print(f"\n[{number}] {passage['title']} (doc {passage['doc_id']}, page {passage['page']}) "
              f"score {passage['score']:.4f}; {ranks}")
        print(passage["text"])
    if support:
        _print_support(support)
    if answer.suggestion:
        _print_suggestion(answer.suggestion)
    return 0


def _print_suggestion(suggestion: dict) -> None:
    print(f"\n-- suggest: {suggestion['verdict']} (p_accept {suggestion['p_accept']:.2f}; {suggestion['model']}): "
          + "; ".join(suggestion["reasons"]))


def _print_support(support: dict) -> None:
    print("\n-- support" + (" (the answer abstains)" if support["abstains"] else ""))
    for sentence in support["sentences"]:
        sources = sorted({evidence["passage"] + 1 for evidence in sentence["evidence"]})
        mark = {"abstention": "ABSTAINS"}.get(sentence["kind"]) or (
            f"supported by [{', '.join(map(str, sources))}]" if sentence["supported"] else "UNSUPPORTED")
        print(f"{sentence['index'] + 1}. {mark}: {sentence['text']}")


def _print_stream(chunk) -> None:
    print(chunk.content, end="", flush=True)


def _unknown_documents(store, doc_ids: list[str]) -> list[str]:
    from loupe.ingest import stored_hashes

    known = stored_hashes(store, doc_ids)
    return [doc_id for doc_id in doc_ids if doc_id not in known]


def cmd_docs(args: argparse.Namespace) -> int:
    from loupe.ingest import count_by_document
    from loupe.stores import build_document_store

    counts = count_by_document(build_document_store(load_settings()))
    for doc_id, chunks in sorted(counts.items()):
        print(f"{doc_id}\t{chunks} chunks")
    print(f"{len(counts)} documents", file=sys.stderr)
    return 0


def cmd_eval_retrieval(args: argparse.Namespace) -> int:
    from loupe.retrieval_eval import evaluate_beir, format_table

    modes = [args.mode] if args.mode else list(RETRIEVAL_MODES)
    results = evaluate_beir(
        load_settings(), Path(args.corpus), Path(args.queries), Path(args.qrels), modes,
        progress=_progress_printer(""),
    )
    print(json.dumps(results) if args.json else format_table(results))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from review.export import export_bytes

    with _sessions()() as session:
        data, count = export_bytes(session, args.format, run=args.run, actor=_operator())
    if args.out:
        Path(args.out).write_bytes(data)
        print(f"exported {count} records to {args.out}", file=sys.stderr)
    elif args.format == "parquet":
        raise ValueError("Parquet is binary: give a file with --out")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from review.context_chunks import ChunkLimits
    from review.importer import Importer, default_run_name
    from review.record_files import decode_text, parse_question_set
    from review.verdict_files import parse_label_map

    questions = parse_question_set(decode_text(Path(args.questions).read_bytes())) if args.questions else None
    if args.chunks is not None and args.chunk_chars is None:
        raise ValueError("--chunks needs --chunk-chars (the retriever's chunk size in characters)")
    limits = ChunkLimits(args.chunk_chars, args.chunks) if args.chunk_chars is not None else None
    importer = Importer(
        _sessions(), actor=_operator(), run=args.run or default_run_name(args.paths), annotator=args.annotator,
        questions=questions, label_map=parse_label_map(args.map), model=args.model, chunk_limits=limits,
    )
    report = importer.import_paths(args.paths, progress=_progress_printer("importing"))
    return _finish(report, FAILED=report.failures, SKIPPED=report.skipped)


def _note_suggester(settings) -> None:
    """A NOTE on stderr when the data directory's suggester file cannot be used and the shipped one suggests."""
    from loupe.suggestion import suggester_note_or_none

    note = suggester_note_or_none(settings)
    if note:
        print(f"NOTE: {note}", file=sys.stderr)


def cmd_analyze(args: argparse.Namespace) -> int:
    from review.analysis import analyze_pending
    from review.db import open_database

    settings = load_settings()
    _note_suggester(settings)
    done = analyze_pending(open_database(settings), settings, run=args.run, progress=_progress_printer("analysing"))
    print(f"support maps and suggested verdicts computed for {done} records"
          + (f" of run {args.run}" if args.run else ""))
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    import signal

    from loupe.ingest import count_by_document
    from loupe.qa import Asker
    from review.batch import run_batch
    from review.db import open_database
    from review.record_files import decode_text, parse_question_set

    settings = load_settings()
    questions = parse_question_set(decode_text(Path(args.questions).read_bytes()))
    asker = Asker(settings)
    known = sorted(count_by_document(asker.bundle.store))
    doc_ids = known if args.docs == ["all"] else args.docs
    unknown = [doc_id for doc_id in doc_ids if doc_id not in known]
    if unknown or not doc_ids:
        why = f"unknown document id(s): {', '.join(unknown)}" if unknown else "no document is ingested"
        print(f"error: {why} (see `python cli.py docs`)", file=sys.stderr)
        return 2
    if asker.generator.fallback_reason:
        print(f"NOTE: using the extractive answerer: {asker.generator.fallback_reason}", file=sys.stderr)
    stop = {"requested": False}

    def request_stop(*_):
        stop["requested"] = True
        print("\nstopping after the current question; run the same command again to resume", file=sys.stderr)

    signal.signal(signal.SIGINT, request_stop)
    show = _progress_printer("answering")
    report = run_batch(
        open_database(settings), asker, settings, actor=_operator(),
        run=args.run or f"batch-{Path(args.questions).stem}", questions=questions, doc_ids=doc_ids, mode=args.mode,
        top_k=args.top_k or settings.top_k,
        progress=lambda done, total, item, left: show(done, total, f"{item} (ETA {_duration(left)})"),
        should_stop=lambda: stop["requested"],
    )
    for failure in report.failures:
        print(f"FAILED {failure}", file=sys.stderr)
    print(report.summary())
    return 0 if not report.failures and not report.cancelled else 1


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{secs:02d}s"


def cmd_report(args: argparse.Namespace) -> int:
    from review.agreement import progress_report

    with _sessions()() as session:
        report = progress_report(session, actor=_operator(), run=args.run)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    print(f"run {report['run']}")
    for name, figures in report["annotators"].items():
        mix = ", ".join(f"{count} {verdict}" for verdict, count in figures["verdicts"].items())
        print(f"  {name}: {figures['done']} of {figures['assigned']} done ({mix}), "
              f"median {figures['median_seconds']} s")
    agreement = report["agreement"]
    for pair in agreement["pairs"]:
        print(f"  {pair['a']} / {pair['b']}: n={pair['n']} agreement={pair['percent_agreement']} "
              f"kappa={pair['cohen_kappa']}")
    print(f"  Fleiss' kappa {agreement['fleiss_kappa']['value']} (n={agreement['fleiss_kappa']['n']}); "
          f"Krippendorff's alpha {agreement['krippendorff_alpha']['value']} (n={agreement['krippendorff_alpha']['n']})")
    for row in agreement.get("suggestion") or []:
        models = f" ({', '.join(row['models'])})" if row["models"] else ""
        print(f"  suggestion{models} / {row['annotator']}: n={row['n']} agreement={row['percent_agreement']} "
              f"kappa={row['cohen_kappa']}")
    return 0


def cmd_train_suggester(args: argparse.Namespace) -> int:
    from review.db import open_database
    from review.suggestions import train_from_reviews

    settings = load_settings()
    model = train_from_reviews(open_database(settings), settings, run=args.run, annotator=args.annotator,
                               out=Path(args.out) if args.out else None, folds=args.folds,
                               progress=_progress_printer("features of"))
    if args.json:
        print(json.dumps(model, ensure_ascii=False))
        return 0
    pooled = model["cross_validation"]["pooled"]
    print(f"trained {model['name']} on {model['training']['rows']} verdicts of {args.annotator} "
          f"({model['training']['accepted']} accept) from {model['training']['documents']} documents")
    print(f"  {model['cross_validation']['method']}: kappa={pooled['cohen_kappa']} accuracy={pooled['accuracy']} "
          f"AUC={pooled['auc']} Brier={pooled['brier']} ECE={pooled['ece']}")
    print(f"  written to {model['path']}" + ("" if args.out else "; it is the model in force now: run "
                                              "`python cli.py analyze` to suggest again with it"))
    return 0


def cmd_assign(args: argparse.Namespace) -> int:
    from review.assignment import assign_run

    with _sessions()() as session:
        summary = assign_run(session, actor=_operator(), run=args.run, annotators=args.annotators,
                             overlap=args.overlap)
    print(summary.summary())
    for name, load in summary.loads.items():
        print(f"  {name}: {load} records")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from review.sampling import draw_sample

    # opened first: a sample is stored for good, so an unwritable --out must stop the command before it draws
    path = Path(args.out)
    with path.open("w", encoding="utf-8") as out, _sessions()() as session:
        try:
            drawn = draw_sample(session, actor=_operator(), run=args.run, budget=args.budget, seed=args.seed,
                                name=args.name, method="uniform" if args.uniform else "active")
        except (ReviewError, ValueError):
            path.unlink()  # no sample, no file
            raise
        out.write("".join(f"{record_id}\n" for record_id in drawn.record_ids))
    print(f"{drawn.summary()}; record ids written to {args.out}")
    print(f"review it in the Queue with the order \"sample {drawn.sample.name}\"", file=sys.stderr)
    return 0


def _per_run(values: list[str] | None, runs: list[str], what: str) -> list[str | None]:
    """One value for every run: none given, one for all, or one per run in order."""
    if not values:
        return [None] * len(runs)
    if len(values) == 1:
        return values * len(runs)
    if len(values) != len(runs):
        raise ValueError(f"give one {what} for all runs or one per --run ({len(runs)}), not {len(values)}")
    return values


def cmd_scorecard(args: argparse.Namespace) -> int:
    from review.queue import EVERYONE
    from review.sampling import get_sample
    from review.scorecard import compare_runs, run_scorecard

    settings = load_settings()
    runs = list(dict.fromkeys(args.run))
    with _sessions()() as session:
        samples: list[str | None] = [None] * len(runs)
        for name in args.sample or []:
            sample = get_sample(session, name)
            if sample.run not in [*runs, args.compare]:
                raise ValueError(f"sample {name!r} is of run {sample.run!r}, which is not among --run or --compare")
            if sample.run in runs:
                samples[runs.index(sample.run)] = name
        annotators = [name or EVERYONE for name in _per_run(args.annotator, runs, "--annotator")]
        cards = [run_scorecard(session, settings, run, actor=_operator(), annotator=annotator, sample=sample,
                               details=not args.json or args.details)
                 for run, annotator, sample in zip(runs, annotators, samples)]
        if args.compare:
            other = args.compare
            other_sample = next((name for name in args.sample or [] if get_sample(session, name).run == other), None)
            for card, annotator, sample in zip(cards, annotators, samples):
                card["difference"] = compare_runs(session, card["run"], other, actor=_operator(),
                                                  annotators=(annotator, annotator), samples=(sample, other_sample))
    if args.json:
        for card in cards:
            print(json.dumps(card, ensure_ascii=False, allow_nan=False))
        return 0
    for card in cards:
        _print_scorecard(card)
    return 0


def _interval(figures: dict | None) -> str:
    if not figures or figures.get("estimate") is None:
        return "–"
    low, high = figures["ci"]
    return f"{figures['estimate']:.1%} (95% CI {low:.1%}–{high:.1%})"


def _print_scorecard(card: dict) -> None:
    print(f"run {card['run']}: {card['records']} records, {card['human_n']} human verdicts"
          + (f" in sample {card['sample']}" if card["sample"] else "") + f" ({card['annotator']})")
    print(f"  acceptance {_interval(card)} [{card['method'] or 'no estimate'}]")
    print(f"  human only {_interval(card['human_only'])}")
    if card["suggestion_only"] is not None:
        print(f"  suggestions only {card['suggestion_only']:.1%} (uncalibrated, "
              f"{card['suggestion_only_records']} records; suggester {card['suggester_model']})")
    if card["more_for_5_points"]:
        print(f"  about {card['more_for_5_points']} more verdicts would bring the interval to ±5 points")
    for note in card["notes"]:
        print(f"  NOTE: {note}")
    if "difference" in card:
        print(f"  {card['difference']['sentence']} [{card['difference']['method']}, "
              f"{card['difference']['pairs']} shared questions and documents]")


def _read_new_password() -> str:
    """The password, twice: prompted on a terminal; otherwise the first two lines of standard input (a single
    line is taken as it is)."""
    if sys.stdin.isatty():
        import getpass

        first, second = getpass.getpass("Password: "), getpass.getpass("Repeat the password: ")
    else:
        lines = sys.stdin.read().splitlines()
        first = lines[0] if lines else ""
        second = lines[1] if len(lines) > 1 else first
    if first != second:
        raise ReviewError("the two passwords differ; nothing was changed")
    return first


def cmd_users(args: argparse.Namespace) -> int:
    from review import users

    with _sessions()() as session:
        actor = _operator()
        if args.action == "list":
            for user in users.list_users(session, actor=actor):
                state = "disabled" if user.disabled else "enabled"
                print(f"{user.name}\t{user.role}\t{state}\t{user.email or ''}")
            return 0
        if args.action == "add":
            users.add_user(session, actor=actor, name=args.name, role=args.role, password=_read_new_password(),
                           email=args.email)
            message = f"added {args.name} ({args.role})"
        elif args.action == "set-password":
            users.set_password(session, actor=actor, name=args.name, password=_read_new_password())
            message = f"password of {args.name} set"
        elif args.action == "set-role":
            users.set_role(session, actor=actor, name=args.name, role=args.role)
            message = f"{args.name} is now {args.role}"
        else:
            users.set_disabled(session, actor=actor, name=args.name, disabled=args.action == "disable")
            message = f"{args.name} {args.action}d"
    print(message)
    return 0


def _prepared_model_folder(settings) -> Path | None:
    """The configured transformers model's local folder, preparing the bundled model (or a GGUF file) first, with
    a progress line on stderr; None when the model is a hub id that is not in the local cache."""
    from configuration.model_paths import apply_offline_mode
    from loupe.bundled_model import local_generator_model

    apply_offline_mode(settings)
    _, folder = local_generator_model(settings, progress=lambda line: print(line, file=sys.stderr, flush=True))
    return folder


def cmd_prepare_model(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.generator_kind != "transformers":
        print(f"nothing to prepare: the generator is {settings.generator_kind}", file=sys.stderr)
        return 0
    folder = _prepared_model_folder(settings)
    print(folder if folder is not None else f"{settings.generator_model} (a hub id; not in the local cache)")
    return 0


def cmd_serve_model(args: argparse.Namespace) -> int:
    from loupe.model_server import ModelServer, client_settings, exposure_warning

    warning = exposure_warning(args.host, args.allow_remote)  # a host others reach is refused without the flag
    settings = load_settings().replace(generator_kind="transformers", generator_base_url="")
    folder = Path(args.model) if args.model else _prepared_model_folder(settings)
    if folder is None or not folder.is_dir():
        raise ValueError(f"no local model folder to serve for {settings.generator_model!r}; give one with --model")
    settings_lines = " ".join(f"{name}={value}" for name, value in client_settings(folder, args.host, args.port).items())
    if warning:
        print(f"WARNING: {warning}", file=sys.stderr)
    server = ModelServer(folder, args.host, args.port, allow_remote=args.allow_remote)
    try:
        with server:
            print(f"serving {folder} on {server.base_url} (chat completions and the model list only; Ctrl-C stops "
                  f"it); point Loupe at it with:\n  {settings_lines}", file=sys.stderr, flush=True)
            return server.wait()
    except KeyboardInterrupt:
        return 0
    except RuntimeError as error:  # transformers serve did not start
        raise ValueError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cli.py", description="Loupe: review RAG answers against their sources.")
    commands = parser.add_subparsers(dest="command", required=True)

    ingest = commands.add_parser("ingest", help="add PDF, text, Markdown and JSONL files (folders recursively)")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    ingest.set_defaults(handler=cmd_ingest)

    ask = commands.add_parser("ask", help="answer a question from the ingested documents")
    ask.add_argument("question", metavar="QUESTION")
    ask.add_argument("--doc", action="append", metavar="ID", help="restrict retrieval to this document (repeatable)")
    ask.add_argument("--mode", choices=RETRIEVAL_MODES, default="hybrid")
    ask.add_argument("--top-k", type=int, dest="top_k", metavar="N")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.add_argument("--support", action="store_true", help="also show which passage supports each answer sentence")
    ask.set_defaults(handler=cmd_ask)

    prepare = commands.add_parser(
        "prepare-model", help="convert the bundled generator (or a GGUF file) into a model folder, once",
        description="The bundled model (or LOUPE_GENERATOR_MODEL=FILE.gguf) is converted into a safetensors folder "
                    "in the model cache (LOUPE_MODEL_CACHE_DIR); prints the folder. Nothing is downloaded.")
    prepare.set_defaults(handler=cmd_prepare_model)

    serve = commands.add_parser(
        "serve-model", help="serve the prepared generator over the OpenAI protocol (transformers serve)",
        description="One model server for several app processes: prints the LOUPE_GENERATOR_* settings for them.")
    serve.add_argument("--host", default="127.0.0.1", help="listen address (default: loopback only; another "
                       "needs --allow-remote)")
    serve.add_argument("--allow-remote", action="store_true", dest="allow_remote",
                       help="let --host be an address other machines reach (a warning says so)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--model", metavar="FOLDER", help="serve this model folder instead of the prepared one")
    serve.set_defaults(handler=cmd_serve_model)

    docs = commands.add_parser("docs", help="list ingested documents")
    docs.set_defaults(handler=cmd_docs)

    evaluate = commands.add_parser("eval-retrieval", help="nDCG@10, Recall@5/10, MRR@10 on a BEIR-format set")
    evaluate.add_argument("corpus", metavar="CORPUS.jsonl")
    evaluate.add_argument("queries", metavar="QUERIES.jsonl")
    evaluate.add_argument("qrels", metavar="QRELS.tsv")
    evaluate.add_argument("--mode", choices=RETRIEVAL_MODES, help="evaluate one mode only (default: all three)")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(handler=cmd_eval_retrieval)

    imports = commands.add_parser(
        "import", help="import RAG outputs (prompt or answer-only .txt records, JSONL) and prior verdicts (CSV/JSONL)",
        description="Import record files, folders (recursively) and zip archives into a run. Verdict files are "
                    "imported as --annotator's verdicts on the records of the run; labels map to verdicts with "
                    "--map (default Yes=accept,No=reject:other).",
    )
    imports.add_argument("paths", nargs="+", metavar="PATH")
    imports.add_argument("--run", metavar="NAME", help="run to import into (default: the first PATH's name)")
    imports.add_argument("--annotator", metavar="NAME", help="whose verdicts the verdict files hold")
    imports.add_argument("--questions", metavar="FILE", help="question set for answer-only records (line n = CQ<n>)")
    imports.add_argument("--map", metavar="LABEL=VERDICT[:REASON],…", help="decision labels to verdicts")
    imports.add_argument("--model", metavar="NAME", help="the generator that wrote the answers (default: the "
                                                          "records' folder name, or meta.model in JSONL)")
    imports.add_argument("--chunk-chars", type=int, metavar="N", help="prompt records: the retriever returned "
                         "chunks of at most N characters; their paragraphs are packed back into such passages")
    imports.add_argument("--chunks", type=int, metavar="K", help="with --chunk-chars: it returned K chunks")
    imports.set_defaults(handler=cmd_import)

    batch = commands.add_parser("batch", help="ask every question of a set of every selected document")
    batch.add_argument("--questions", required=True, metavar="FILE", help="one question per line, or JSONL {id, question}")
    batch.add_argument("--docs", nargs="+", required=True, metavar="ID", help="document ids, or `all`")
    batch.add_argument("--run", metavar="NAME", help="run name (default: batch-<questions file name>); "
                                                    "running it again resumes it")
    batch.add_argument("--mode", choices=RETRIEVAL_MODES, default="hybrid")
    batch.add_argument("--top-k", type=int, dest="top_k", metavar="N")
    batch.set_defaults(handler=cmd_batch)

    analyze = commands.add_parser("analyze", help="compute the support maps that imports and batches deferred")
    analyze.add_argument("--run", metavar="NAME", help="only the records of this run")
    analyze.set_defaults(handler=cmd_analyze)

    report = commands.add_parser("report", help="progress and inter-annotator agreement of a run")
    report.add_argument("--run", required=True, metavar="NAME")
    report.add_argument("--json", action="store_true", help="print one JSON object")
    report.set_defaults(handler=cmd_report)

    train = commands.add_parser(
        "train-suggester", help="retrain the verdict suggester on an annotator's verdicts on a run",
        description="Fits the suggester (a logistic regression and boosted trees over support-map features and "
                    "each question's acceptance rate, averaged and calibrated) on the "
                    "annotator's verdicts (accept = accept; reject and correct = reject), measures it with whole "
                    "documents held out, and writes it to DATA_DIR/models/suggester.json, where it replaces the "
                    "shipped model (or to --out).",
    )
    train.add_argument("--run", required=True, metavar="NAME")
    train.add_argument("--annotator", required=True, metavar="NAME")
    train.add_argument("--out", metavar="FILE", help="write the model here instead (it is then not used)")
    train.add_argument("--folds", type=int, default=5, metavar="K", help="grouped cross-validation folds")
    train.add_argument("--json", action="store_true", help="print the model file's JSON and its path")
    train.set_defaults(handler=cmd_train_suggester)

    assign = commands.add_parser("assign", help="assign a run's records to annotators, each record to K of them",
                                 description="Balanced assignment; run it again with more (or fewer) annotators to "
                                             "re-balance. Records someone has judged stay with them.")
    assign.add_argument("--run", required=True, metavar="NAME")
    assign.add_argument("--annotators", required=True, nargs="+", metavar="NAME", help="user names")
    assign.add_argument("--overlap", required=True, type=int, metavar="K", help="annotators per record")
    assign.set_defaults(handler=cmd_assign)

    users = commands.add_parser("users", help="user accounts for LOUPE_AUTH=password: add, list, disable, roles")
    user_actions = users.add_subparsers(dest="action", required=True)
    add = user_actions.add_parser("add", help="add a user; the password is read twice from the terminal or stdin")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--email", metavar="ADDRESS")
    user_actions.add_parser("list", help="every user with role and state")
    for action, what in (("disable", "stop a user from logging in"), ("enable", "let a disabled user log in again"),
                         ("set-password", "set a user's password (read twice from the terminal or stdin)")):
        user_actions.add_parser(action, help=what).add_argument("name", metavar="NAME")
    set_role = user_actions.add_parser("set-role", help="change a user's role")
    set_role.add_argument("name", metavar="NAME")
    set_role.add_argument("role", metavar="ROLE", choices=ROLES)
    users.set_defaults(handler=cmd_users)

    sample = commands.add_parser(
        "sample", help="choose records of a run to review, stored as a named sample",
        description="Draws BUDGET records from every record of the run (whatever verdicts they have) and stores the "
                    "sample with every record's inclusion probability, so that `scorecard --sample` weights each "
                    "verdict by it. Active (default): records whose suggestion is uncertain are likelier to be "
                    "chosen; --uniform: a simple random sample. Writes the record ids (as imported) one per line, "
                    "in the order the Queue's \"sample NAME\" shows them.")
    sample.add_argument("--run", required=True, metavar="NAME")
    sample.add_argument("--budget", required=True, type=int, metavar="N", help="how many records to choose")
    sample.add_argument("--seed", required=True, type=int, metavar="S", help="random seed (same seed, same sample)")
    sample.add_argument("--name", required=True, metavar="P", help="the sample's name (new)")
    sample.add_argument("--out", required=True, metavar="FILE", help="write the chosen record ids here")
    sample.add_argument("--uniform", action="store_true", help="a simple random sample instead of an active one")
    sample.set_defaults(handler=cmd_sample)

    scorecard = commands.add_parser(
        "scorecard", help="each run's acceptance rate with a 95%% interval (prediction-powered inference)",
        description="Accepted / judged (a correction counts as not acceptable), estimated from the human verdicts "
                    "and every record's suggestion (prediction-powered inference, ppi_py), beside the human-only "
                    "estimate and the uncalibrated mean of the suggestions. Without --sample every judged record is "
                    "taken as a uniform sample.")
    scorecard.add_argument("--run", required=True, action="append", metavar="NAME", help="repeatable")
    scorecard.add_argument("--sample", action="append", metavar="P", help="use this sample's verdicts and design "
                                                                         "for its run (repeatable, one per run)")
    scorecard.add_argument("--annotator", action="append", metavar="NAME", help="whose verdicts (default: "
                           "everyone's, the latest per record); one for all runs or one per --run")
    scorecard.add_argument("--compare", metavar="RUN", help="add the difference to this run, on shared questions "
                                                            "and documents")
    scorecard.add_argument("--json", action="store_true", help="one JSON object per run")
    scorecard.add_argument("--details", action="store_true", help="with --json: per question and per document too")
    scorecard.set_defaults(handler=cmd_scorecard)

    export = commands.add_parser("export", help="records with their annotations as JSONL, CSV or Parquet")
    export.add_argument("--format", choices=("jsonl", "csv", "parquet"), default="jsonl")
    export.add_argument("--out", metavar="FILE", help="write here instead of standard output")
    export.add_argument("--run", metavar="NAME", help="only the records of this run")
    export.set_defaults(handler=cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (SettingsError, ReviewError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

