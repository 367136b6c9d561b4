"""The suggester measured the way a new team meets it: on papers it was not trained on, through the CLI.

    python -m bench.suggester_acceptance [--folds 5] [--only K]

For each of the GroupKFold folds by paper (as bench/train_suggester.py makes them): a model is trained on the other
papers' human verdicts and placed in a fresh data directory; the held-out papers' answers of all five models are
written as JSONL records with their passages (the mixtral_8_22b prompt record's context, as the study retrieved it
once for every model) and their questions as `CQs.txt` spells them (not as the prompt records do); then
`cli.py import`, `cli.py analyze` and `cli.py export --format jsonl` run as a user would run them, and the exported
`suggestion.verdict` is compared with the person's Yes/No. Prints Cohen's kappa per fold and pooled, and per
generating model. Needs the support maps cached by bench/train_suggester.py for training (the held-out answers are
analysed afresh by `cli.py analyze`): about 90 s a fold on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.metrics import cohen_kappa_score

from bench.suggester_data import KOMMINENI, REPO, Example, attach_support, load_examples
from bench.train_suggester import training_rows
from configuration.settings import load_settings
from loupe.suggester_training import DEFAULT_FOLDS, TREES, fit, group_folds, model_json
from loupe.suggestion import MODEL_FEATURES, feature_vector
from review.record_files import parse_text_record


def train_without(examples: list[Example], data_dir: Path, name: str) -> None:
    """The suggester trained on `examples`, written where `cli.py analyze` in `data_dir` uses it."""
    rows = training_rows(examples)
    matrix = np.array([feature_vector(row, MODEL_FEATURES) for row in rows])
    accepted = np.array([row["verdict"] == "accept" for row in rows], dtype=int)
    model = fit(matrix, accepted, [row["paper"] for row in rows], trees=TREES,
                questions=[row["question"] for row in rows])
    (data_dir / "models").mkdir(parents=True)
    (data_dir / "models" / "suggester.json").write_text(model_json({"name": name, **model}), encoding="utf-8")


def jsonl_records(examples: list[Example], root: Path = KOMMINENI) -> str:
    """The examples as JSONL records: id, question (CQs.txt's spelling), answer, contexts, doc_id, meta.model."""
    questions = [line.strip() for line in (root / "CQs.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    lines = []
    for example in examples:
        stem = example.id.split("/", 1)[1]
        record = parse_text_record(stem, (root / "records" / "mixtral_8_22b" / f"{stem}.txt").read_text(encoding="utf-8"))
        lines.append(json.dumps({"id": example.id, "question": questions[int(example.question_id[1:]) - 1],
                                 "answer": example.answer, "contexts": [p["text"] for p in record.passages],
                                 "doc_id": example.paper, "meta": {"model": example.model}}))
    return "\n".join(lines) + "\n"


def cli(data_dir: Path, *args: str) -> None:
    env = {**os.environ, "LOUPE_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "cli.py", *args], cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"cli.py {' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}")


def run_fold(examples: list[Example], train: np.ndarray, test: np.ndarray, fold: int) -> list[tuple[str, int, int]]:
    """(generating model, human accept, suggested accept) of each held-out answer, through the CLI."""
    with tempfile.TemporaryDirectory(prefix="loupe-acceptance-") as folder:
        data_dir = Path(folder)
        train_without([examples[i] for i in train], data_dir, f"fold-{fold}")
        held_out = [examples[i] for i in test]
        (data_dir / "held-out.jsonl").write_text(jsonl_records(held_out), encoding="utf-8")
        cli(data_dir, "import", str(data_dir / "held-out.jsonl"), "--run", "held-out")
        cli(data_dir, "analyze", "--run", "held-out")
        cli(data_dir, "export", "--format", "jsonl", "--out", str(data_dir / "export.jsonl"), "--run", "held-out")
        exported = {row["record_id"]: row for row in map(json.loads, (data_dir / "export.jsonl").open(encoding="utf-8"))}
    if len(exported) != len(held_out):
        raise SystemExit(f"fold {fold}: {len(held_out)} answers imported, {len(exported)} exported")
    return [(e.model, int(e.verdict == "accept"), int(exported[e.id]["suggestion"]["verdict"] == "accept"))
            for e in held_out]


def kappa(pairs: list[tuple[str, int, int]]) -> float:
    return float(cohen_kappa_score([p[1] for p in pairs], [p[2] for p in pairs]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", type=int, default=DEFAULT_FOLDS)
    parser.add_argument("--only", type=int, metavar="K", help="run fold K alone")
    args = parser.parse_args(argv)
    if not KOMMINENI.exists():
        print(f"error: {KOMMINENI} is absent (../shared exists only on the project's build machines)", file=sys.stderr)
        return 2
    examples = load_examples()
    attach_support(examples, load_settings())
    pooled: list[tuple[str, int, int]] = []
    for fold, (train, test) in enumerate(group_folds([e.paper for e in examples], args.folds)):
        if args.only is not None and fold != args.only:
            continue
        pairs = run_fold(examples, train, test, fold)
        papers = sorted({examples[i].paper for i in test})
        print(f"fold {fold}: {len(pairs)} answers of {', '.join(papers)}: kappa {kappa(pairs):.3f}", flush=True)
        pooled += pairs
    print(f"pooled: {len(pooled)} answers, kappa {kappa(pooled):.3f}")
    for model in sorted({p[0] for p in pooled}):
        mine = [p for p in pooled if p[0] == model]
        print(f"  {model:<22} n {len(mine):>4}  kappa {kappa(mine):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
