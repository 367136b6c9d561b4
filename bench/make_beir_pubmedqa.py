"""Write PubMedQA's expert-labelled set as a BEIR retrieval set: each question's relevant document is its abstract.

    python bench/make_beir_pubmedqa.py OUT_DIR [--limit N] [--source ../shared/data/pubmedqa/pqal_dev.json]
    python cli.py eval-retrieval OUT_DIR/corpus.jsonl OUT_DIR/queries.jsonl OUT_DIR/qrels.tsv

The corpus has one document per item (id = PubMed id, empty title, text = the abstract's paragraphs joined by
blank lines), the queries are the items' questions (same ids), and each query has one qrel of score 1.
The data stays in ../shared (see its README): write the set to a temporary folder, not into the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEFAULT_SOURCE = SHARED / "data" / "pubmedqa" / "pqal_dev.json"


def write_beir(out_dir: Path, source: Path = DEFAULT_SOURCE, limit: int | None = None) -> dict[str, Path]:
    """Write corpus.jsonl, queries.jsonl and qrels.tsv for the first `limit` items (all when None).

    :returns: the three paths, keyed "corpus", "queries", "qrels".
    :raises OSError: when the source cannot be read; ValueError when it is not PubMedQA's JSON.
    """
    items = json.loads(Path(source).read_text(encoding="utf-8"))
    if not isinstance(items, dict):
        raise ValueError(f"{source}: expected a JSON object keyed by PubMed id")
    selected = list(items.items())[:limit]
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"corpus": out_dir / "corpus.jsonl", "queries": out_dir / "queries.jsonl", "qrels": out_dir / "qrels.tsv"}
    with (paths["corpus"].open("w", encoding="utf-8") as corpus,
          paths["queries"].open("w", encoding="utf-8") as queries,
          paths["qrels"].open("w", encoding="utf-8") as qrels):
        qrels.write("query-id\tcorpus-id\tscore\n")
        for pmid, item in selected:
            text = "\n\n".join(paragraph.strip() for paragraph in item["CONTEXTS"])
            corpus.write(json.dumps({"_id": pmid, "title": "", "text": text}, ensure_ascii=False) + "\n")
            queries.write(json.dumps({"_id": pmid, "text": item["QUESTION"]}, ensure_ascii=False) + "\n")
            qrels.write(f"{pmid}\t{pmid}\t1\n")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--limit", type=int, help="only the first N items")
    args = parser.parse_args(argv)
    paths = write_beir(args.out_dir, args.source, args.limit)
    print(" ".join(str(path) for path in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
