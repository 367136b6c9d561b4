"""A suggested verdict for an answer, from its support map: accept or reject, the probability that a person would
accept it, and the reasons in words. No LLM: a logistic regression and gradient-boosted trees side by side, their
mean decision value calibrated, over a few numbers of the support map, the answer, its question and its passages
(`features`), and how often answers to the same question were accepted in training (`QuestionPriors`), trained
on human verdicts (bench/train_suggester.py, `cli.py train-suggester`).

The model is a JSON file (`SHIPPED_MODEL`, or one trained on a team's own verdicts): the feature names, the
standard scaler's means and scales, the coefficients and intercept, the trees as arrays (`BoostedTrees`; format 2,
format 1 files without trees still load) and the sigmoid calibration of the decision value, besides the training
data's hash, the trees' settings and how they were chosen, the question priors (accepted and answered, per
question), and the cross-validated figures. Loading it runs no
code (no pickle); the trees are evaluated in numpy.

Usage:
```python
suggester = Suggester.load()  # the shipped model
suggestion = suggester.suggest(support=record.support, passages=record.passages, answer=record.answer,
                               question=record.question)
# {"verdict": "reject", "p_accept": 0.14, "reasons": ["opens by saying the context lacks the answer", ...],
#  "model": "kommineni2024-lr-gbt-1a2b3c4d"}
```
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from components.support_aligner import clean_text, content_words
from configuration.settings import Settings

# Format 1: the logistic regression alone; 2: with boosted trees beside it (`BoostedTrees`).
LINEAR_FORMAT = "loupe-suggester/1"
MODEL_FORMAT = "loupe-suggester/2"
READABLE_FORMATS = (LINEAR_FORMAT, MODEL_FORMAT)
SHIPPED_MODEL = Path(__file__).parent / "models" / "suggester.json"
# A model trained on a team's own verdicts (`cli.py train-suggester`) is written here and used instead.
LOCAL_MODEL = Path("models") / "suggester.json"  # under the data directory
VERDICTS = ("accept", "reject")
logger = logging.getLogger(__name__)
# Bounds on a model file, which may come from anyone's data directory: its size and nesting are checked before it is
# parsed, its numbers and trees as it is read. The shipped model is 106 KB, nests 5 deep and has 150 trees of at
# most 15 nodes; the bounds leave room for other training settings and keep a model's arrays within ~40 MB.
MAX_MODEL_BYTES = 8 * 1024 * 1024
MAX_NESTING = 16
MAX_MAGNITUDE = 1e9  # of any number in the file: a scaler, a coefficient or a split beyond it is no trained model
MAX_TREES = 2000
MAX_TREE_NODES = 511  # a full tree of depth 8

# Words of a question that say nothing about what it asks for (besides the aligner's stopwords).
_QUESTION_FILLER = frozenset(content_words(
    "what which where how who whose deep learning pipeline model e.g. eg i.e. link type kind method methods "
    "technique techniques criteria process used utilized employed applied available"
))
_HEDGE = re.compile(
    r"\b(?:likely|probably|possibly|perhaps|presumably|might|may|could|can\s+be\s+inferred|it\s+is\s+possible|"
    r"suggests?|implies|implying|assum\w*|typically|usually|generally|commonly|common\s+practices?|"
    r"in\s+general|often|it\s+seems|appears?\s+to|would)\b",
    re.IGNORECASE,
)
_APOLOGY = re.compile(r"\b(?:sorry|apologi[sz]e|regret|unfortunately)\b", re.IGNORECASE)
_URL = re.compile(r"https?://|www\.|\b(?:github|gitlab|zenodo|figshare|dryad|bitbucket)\.\w", re.IGNORECASE)
_NUMBER = re.compile(r"\d")
_CONTRAST = re.compile(r"\s*(?:however|but|nevertheless|nonetheless|still|yet|that said|instead)\b", re.IGNORECASE)
# Saying that something follows from the context rather than that the context states it.
_INFERENCE = re.compile(r"\b(?:infer\w*|it\s+appears|seems?|suggest\w*|impl(?:y|ies|ied)|indicat\w*)\b", re.IGNORECASE)
# Names and numbers: acronyms and CamelCase (CNN, ResNet), names with digits (VGG-16, L2, v3.8), numbers (0.5).
_TERM = re.compile(r"\b(?:[A-Z][A-Za-z0-9]*[A-Z0-9][A-Za-z0-9-]*|[A-Za-z]+\d[\w.-]*|\d+(?:\.\d+)?)\b")
# A question's own examples of what it asks for: "(e.g., dropout, L2 regularization)". Only the opening is a
# pattern: "[^)]*\)" retried at every "(e.g." of a text without ")" took O(n²) (18.7 s on a 105 KB question).
_EXAMPLES_OPENING = re.compile(r"\(e\.g\.,?\s*", re.IGNORECASE)
_EXAMPLE_SEPARATOR = re.compile(r",|/|\bor\b")


# The model's inputs, in the order of its coefficients; see `features` for what each one is.
FEATURES: tuple[str, ...] = (
    "empty_answer",
    "log_words",
    "log_sentences",
    "abstains",
    "opens_with_abstention",
    "only_abstention",
    "ends_with_abstention",
    "abstention_share",
    "log_supported",
    "supported_share",
    "unsupported_share",
    "generic_share",
    "supported_after_abstention",
    "best_score",
    "mean_score",
    "passages_cited",
    "cites_top_passage",
    "question_in_answer",
    "question_in_supported",
    "question_in_evidence",
    "question_in_passages",
    "hedge_share",
    "apology",
    "numbers_in_supported",
    "url_in_answer",
    # The same numbers read differently once an answer has said that the context lacks the answer: a long
    # answer that abstains adds what the context does say, a long one that does not abstain pads.
    "abstaining_words",
    "answering_words",
    "abstaining_question_in_supported",
    "answering_unsupported_share",
    "abstaining_best_score",
    "contrast_after_abstention",
    # What the claims (the sentences that are not abstentions) say, against the question and the passages.
    "supported_word_share",
    "terms_in_passages",
    "question_in_claims",
    "examples_in_claims",
    "examples_in_passages",
    "inference",
)
# What the trained models use: every feature but the passage counts and positions, which depend on how a context
# was cut into passages (paragraphs, chunks) rather than on the answer. They still shape the reasons.
MODEL_FEATURES: tuple[str, ...] = tuple(name for name in FEATURES if name not in ("passages_cited", "cites_top_passage"))
# A feature that the model file itself supplies, not `features`: how often answers to the record's question were
# accepted in the training data (`QuestionPriors`).
QUESTION_PRIOR = "question_prior"


def question_key(question: str | None) -> str:
    """A question as the priors look it up: lower case, any run of other characters than letters and digits one
    space, so that a question typed again with other spacing or punctuation is the same question."""
    return " ".join(re.findall(r"[^\W_]+", (question or "").lower()))


def same_words(words: list[str], other: list[str]) -> bool:
    """Word for word the same, but for typos in words of five letters or more (difflib ratio >= 0.8): "fliping"
    is "flipping", while "code" and "data" repository are two of the study's questions."""
    return len(words) == len(other) and all(
        a == b or (min(len(a), len(b)) >= 5 and SequenceMatcher(None, a, b).ratio() >= 0.8)
        for a, b in zip(words, other))


@dataclass(frozen=True)
class QuestionPriors:
    """How often answers to each training question were accepted, shrunk towards the overall rate by `alpha`
    answers' worth of it: users ask the same questions of many papers, and some questions are rarely answered
    acceptably (4 % for one of the study's, 92 % for another). A question not in the training data gets the
    overall rate, which says nothing about it."""

    base_rate: float
    alpha: float
    counts: dict[str, tuple[int, int]]  # question_key -> (accepted, answers)

    @classmethod
    def count(cls, questions: list[str | None], accepted: list[int], alpha: float) -> QuestionPriors:
        counts: dict[str, list[int]] = {}
        for question, label in zip(questions, accepted):
            tally = counts.setdefault(question_key(question), [0, 0])
            tally[0], tally[1] = tally[0] + int(label), tally[1] + 1
        counts.pop("", None)  # no question text: nothing to learn about it
        return cls(base_rate=float(np.mean(accepted)), alpha=alpha,
                   counts={key: (good, total) for key, (good, total) in sorted(counts.items())})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuestionPriors:
        """:raises ValueError: rates or counts out of range (NaN included)."""
        base_rate, alpha = float(data["base_rate"]), float(data["alpha"])
        counts = {str(key): (int(good), int(total)) for key, (good, total) in data["counts"].items()}
        if not 0 < base_rate < 1 or not 0 < alpha < math.inf or any(not 0 <= good <= total for good, total in counts.values()):
            raise ValueError("question priors need 0 < base_rate < 1, alpha > 0 and 0 <= accepted <= answers")
        return cls(base_rate=base_rate, alpha=alpha, counts=counts)

    def to_dict(self) -> dict[str, Any]:
        return {"base_rate": round(self.base_rate, 10), "alpha": self.alpha,
                "counts": {key: list(tally) for key, tally in self.counts.items()}}

    def seen(self, question: str | None) -> tuple[int, int] | None:
        """(accepted, answers) of this question in the training data, or None. Misspelt words still match
        (`same_words`): the study's prompt records spell "Fliping, Roating" where its question list has
        "Flipping, Rotating"."""
        key = question_key(question)
        if key in self.counts or not key:
            return self.counts.get(key)
        words = key.split()
        return next((tally for known, tally in self.counts.items() if same_words(words, known.split())), None)

    def rate(self, question: str | None) -> float:
        good, total = self.seen(question) or (0, 0)
        return (good + self.alpha * self.base_rate) / (total + self.alpha)

    def log_odds(self, question: str | None) -> float:
        """The feature value: the log-odds of the shrunk acceptance rate (kept finite where a training fold had
        verdicts of one kind only)."""
        rate = min(max(self.rate(question), 1e-6), 1.0 - 1e-6)
        return math.log(rate / (1.0 - rate))


@dataclass
class SupportFacts:
    """What the reasons are written from: counts and passages of one answer's support map."""

    sentences: int
    abstentions: int
    claims: int  # sentences that are not abstentions
    supported: int
    unsupported: int
    generic: int
    opens_with_abstention: bool
    cited: list[int]  # passages (numbered from 0) cited by supported claims, most cited first
    best_score: float
    min_score: float | None  # the aligner's threshold, when the map says


def _sentences(support: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list((support or {}).get("sentences") or [])


def support_facts(support: dict[str, Any] | None) -> SupportFacts:
    """The counts of a support map in its stored dict form (`SupportMap.to_dict()`)."""
    sentences = _sentences(support)
    claims = [s for s in sentences if s.get("kind") != "abstention"]
    supported = [s for s in claims if s.get("supported")]
    counts: dict[int, int] = {}
    for sentence in supported:
        for passage in {item["passage"] for item in sentence.get("evidence") or []}:
            counts[passage] = counts.get(passage, 0) + 1
    thresholds = (support or {}).get("thresholds") or {}
    return SupportFacts(
        sentences=len(sentences), abstentions=len(sentences) - len(claims), claims=len(claims),
        supported=len(supported), unsupported=sum(1 for s in sentences if not s.get("supported")),
        generic=sum(1 for s in claims if s.get("kind") == "generic"),
        opens_with_abstention=bool(sentences) and sentences[0].get("kind") == "abstention",
        cited=sorted(counts, key=lambda passage: (-counts[passage], passage)),
        best_score=max((float(s.get("score") or 0.0) for s in claims), default=0.0),
        min_score=thresholds.get("min_score"),
    )


def _share(part: frozenset[str], whole: frozenset[str]) -> float:
    return len(part & whole) / len(whole) if whole else 0.0


def question_words(question: str | None) -> frozenset[str]:
    """The content words of a question, without those that every question of a set shares ("deep learning")."""
    return content_words(clean_text(question or "")) - _QUESTION_FILLER


def question_examples(question: str | None) -> list[frozenset[str]]:
    """The content words of each example a question gives in "(e.g., A, B or C)"; none without such a list."""
    question = question or ""
    opening = _EXAMPLES_OPENING.search(question)
    closing = question.find(")", opening.end()) if opening else -1
    parts = _EXAMPLE_SEPARATOR.split(question[opening.end() : closing]) if closing >= 0 else []
    return [words for words in (content_words(clean_text(part)) for part in parts) if words]


def _word_count(sentences: list[dict[str, Any]]) -> int:
    return sum(len((s.get("text") or "").split()) for s in sentences)


def features(support: dict[str, Any] | None, passages: list[dict[str, Any]] | None, answer: str | None,
             question: str | None = None) -> dict[str, float]:
    """The suggester's inputs for one answer (every name of `FEATURES`, as floats).

    :param support: the support map in its stored dict form (record.support, `analyze_support`'s return);
        None or empty for an answer without one (every support figure is then 0).
    :param passages: the record's passages ({"text", ...}); only their texts are read.
    :param answer: the answer text. :param question: the question, for the overlap features.
    """
    sentences = _sentences(support)
    facts = support_facts(support)
    answer = answer or ""
    claims = [s for s in sentences if s.get("kind") != "abstention"]
    supported = [s for s in claims if s.get("supported")]
    first_abstention = next((i for i, s in enumerate(sentences) if s.get("kind") == "abstention"), None)
    scores = [float(s.get("score") or 0.0) for s in claims]
    asked = question_words(question)
    answer_words = content_words(clean_text(answer))
    supported_words = frozenset().union(*(content_words(clean_text(s.get("text") or "")) for s in supported))
    evidence_words = frozenset().union(*(content_words(clean_text(item.get("text") or ""))
                                         for s in supported for item in s.get("evidence") or []))
    passage_text = clean_text(" ".join(p.get("text") or "" for p in passages or []))
    passage_words = content_words(passage_text)
    claim_text = clean_text(" ".join(s.get("text") or "" for s in claims))
    claim_words = content_words(claim_text)
    terms = set(_TERM.findall(claim_text))
    examples = question_examples(question)
    claim_count = max(facts.claims, 1)
    values = {
        "empty_answer": float(not answer.strip()),
        "log_words": math.log1p(len(answer.split())),
        "log_sentences": math.log1p(facts.sentences),
        "abstains": float(facts.abstentions > 0),
        "opens_with_abstention": float(facts.opens_with_abstention),
        "only_abstention": float(facts.abstentions > 0 and facts.claims == 0),
        "ends_with_abstention": float(facts.sentences > 1 and sentences[-1].get("kind") == "abstention"),
        "abstention_share": facts.abstentions / facts.sentences if facts.sentences else 0.0,
        "log_supported": math.log1p(facts.supported),
        "supported_share": facts.supported / claim_count,
        "unsupported_share": facts.unsupported / claim_count,
        "generic_share": facts.generic / claim_count,
        "supported_after_abstention": math.log1p(sum(
            1 for s in sentences[(first_abstention if first_abstention is not None else len(sentences)) + 1:]
            if s.get("kind") != "abstention" and s.get("supported"))),
        "best_score": facts.best_score,
        "mean_score": sum(scores) / len(scores) if scores else 0.0,
        "passages_cited": float(len(facts.cited)),
        "cites_top_passage": float(0 in facts.cited),
        "question_in_answer": _share(answer_words, asked),
        "question_in_supported": _share(supported_words, asked),
        "question_in_evidence": _share(evidence_words, asked),
        "question_in_passages": _share(passage_words, asked),
        "hedge_share": sum(1 for s in claims if _HEDGE.search(s.get("text") or "")) / claim_count,
        "apology": float(bool(_APOLOGY.search(answer))),
        "numbers_in_supported": float(any(_NUMBER.search(s.get("text") or "") for s in supported)),
        "url_in_answer": float(bool(_URL.search(answer))),
        "supported_word_share": _word_count(supported) / max(_word_count(sentences), 1),
        "terms_in_passages": sum(1 for term in terms if term in passage_text) / len(terms) if terms else 0.0,
        "question_in_claims": _share(claim_words, asked),
        "examples_in_claims": float(any(example <= claim_words for example in examples)),
        "examples_in_passages": float(any(example <= passage_words for example in examples)),
        "inference": float(bool(_INFERENCE.search(claim_text))),
    }
    values["contrast_after_abstention"] = float(any(
        _CONTRAST.match(s.get("text") or "") and s.get("supported") and s.get("kind") != "abstention"
        for s in sentences[(first_abstention if first_abstention is not None else len(sentences)) + 1:]))
    abstaining = values["abstains"]
    values["abstaining_words"] = abstaining * values["log_words"]
    values["answering_words"] = (1.0 - abstaining) * values["log_words"]
    values["abstaining_question_in_supported"] = abstaining * values["question_in_supported"]
    values["answering_unsupported_share"] = (1.0 - abstaining) * values["unsupported_share"]
    values["abstaining_best_score"] = abstaining * values["best_score"]
    return values


def feature_vector(values: dict[str, float], names: tuple[str, ...] | list[str] = FEATURES) -> np.ndarray:
    """The values in the order of `names` (a model's own feature list)."""
    return np.array([float(values[name]) for name in names], dtype=np.float64)


class ModelFileError(ValueError):
    """A suggester model file that cannot be used; the message says why."""


def _passage_list(passages: list[int]) -> str:
    numbers = [str(p + 1) for p in sorted(passages)]
    if len(numbers) == 1:
        return f"passage {numbers[0]}"
    return "passages " + ", ".join(numbers[:-1]) + " and " + numbers[-1]


# Which features each reason speaks for; a reason is given when its features pushed towards the verdict.
_REASON_FEATURES: dict[str, tuple[str, ...]] = {
    "empty": ("empty_answer",),
    "abstention": ("abstains", "opens_with_abstention", "only_abstention", "ends_with_abstention",
                   "abstention_share", "apology"),
    "unsupported": ("unsupported_share", "generic_share", "supported_share", "log_supported",
                    "supported_after_abstention", "best_score", "mean_score", "numbers_in_supported",
                    "answering_unsupported_share", "abstaining_best_score", "supported_word_share",
                    "terms_in_passages"),
    "cited": ("passages_cited", "cites_top_passage"),
    "question": ("question_in_answer", "question_in_supported", "question_in_evidence",
                 "abstaining_question_in_supported", "question_in_claims", "examples_in_claims"),
    "retrieval": ("question_in_passages", "examples_in_passages"),
    "hedges": ("hedge_share", "inference"),
    "contrast": ("contrast_after_abstention",),
    "length": ("log_words", "log_sentences", "abstaining_words", "answering_words"),
    "url": ("url_in_answer",),
    "prior": (QUESTION_PRIOR,),
}


def reasons(values: dict[str, float], facts: SupportFacts, contributions: dict[str, float], verdict: str,
            limit: int = 3) -> list[str]:
    """The reasons for `verdict` in words, strongest first: each reason's features' summed contribution to the
    decision value (`Suggester.contributions`; positive = towards accept) must point the verdict's way. The
    passages that the supported sentences cite are named last whenever there are any."""
    sign = 1.0 if verdict == "accept" else -1.0
    words: dict[str, str] = {}
    if values["empty_answer"]:
        words["empty"] = "the answer is empty"
    if facts.opens_with_abstention:
        words["abstention"] = ("only says that the context lacks the answer" if not facts.claims
                               else "opens by saying the context lacks the answer")
    elif facts.abstentions:
        words["abstention"] = "says the context lacks part of the answer"
    elif verdict == "accept":
        words["abstention"] = "answers without saying that the context lacks anything"
    if facts.claims:
        if facts.unsupported and facts.claims == 1:
            words["unsupported"] = "its one sentence is unsupported"
        elif facts.unsupported:
            words["unsupported"] = f"{facts.unsupported} of {facts.claims} sentences unsupported"
            if facts.generic:
                words["unsupported"] += f" ({facts.generic} from outside knowledge)"
        else:
            words["unsupported"] = ("every sentence supported by the passages" if facts.claims > 1
                                    else "its sentence is supported by the passages")
    if facts.cited:
        only = " only" if len(facts.cited) == 1 else ""
        subject = "supported sentences cite" if facts.supported > 1 else "the supported sentence cites"
        words["cited"] = f"{subject} {_passage_list(facts.cited)}{only}"
    elif facts.claims and not values["empty_answer"]:
        words["cited"] = "no sentence is supported by a passage"
    if values["question_in_supported"] >= 0.5:
        words["question"] = "supported sentences use the question's own terms"
    elif values["question_in_answer"] < 0.25:
        words["question"] = "the answer hardly uses the question's terms"
    if values["question_in_passages"] < 0.25:
        words["retrieval"] = "the passages hardly use the question's terms"
    if values["contrast_after_abstention"]:
        words["contrast"] = "after the abstention, goes on with what the passages do say"
    if values["hedge_share"] >= 0.3:
        words["hedges"] = "hedges (\"likely\", \"may\", \"typically\")"
    if values["log_words"] < math.log1p(12) and not values["empty_answer"]:
        words["length"] = "a very short answer"
    elif values["log_words"] > math.log1p(200):
        words["length"] = "a long answer"
    if values["url_in_answer"]:
        words["url"] = "gives a link"
    if values.get("question_seen"):
        words["prior"] = f"answers to this question were accepted {values['question_rate']:.0%} of the time in training"
    strength = {key: sign * sum(contributions.get(name, 0.0) for name in _REASON_FEATURES[key]) for key in words}
    weighed = [key for key in words if key != "cited"]
    ranked = sorted((key for key in weighed if strength[key] > 0), key=lambda key: -strength[key])
    if not ranked and weighed:  # nothing pushed this way on its own: the strongest description there is
        ranked = sorted(weighed, key=lambda key: -strength[key])[:1]
    ranked = ranked[: limit - 1] if "cited" in words else ranked[:limit]
    if "cited" in words:  # which passages carry the answer: said whenever it is known (the models do not weigh it)
        ranked.append("cited")
    return [words[key] for key in ranked]


@dataclass(frozen=True)
class BoostedTrees:
    """Gradient-boosted regression trees (scikit-learn's GradientBoostingClassifier, log loss) as padded arrays,
    evaluated in numpy: raw score = init + learning_rate x the sum of the leaves reached. Leaves point to
    themselves, so that every row takes `depth` steps. A row goes left where its value as float32 (what
    scikit-learn compares) is at most the node's threshold. Inner nodes carry the sample-weighted mean of their
    leaves, so that a path's steps say what each split feature added (`contributions`)."""

    init: float
    learning_rate: float
    feature: np.ndarray  # (trees, nodes) int; 0 at leaves and padding
    threshold: np.ndarray  # (trees, nodes)
    left: np.ndarray  # (trees, nodes) int; a leaf's own index
    right: np.ndarray
    value: np.ndarray  # (trees, nodes)
    depth: int

    @classmethod
    def from_dict(cls, data: dict[str, Any], features: int) -> BoostedTrees:
        """:raises ModelFileError: a tree that is not one (arrays of unequal length, children that do not come
        after their node, features out of range)."""
        trees = data["trees"]
        if not trees:
            raise ModelFileError("the model's tree list is empty")
        nodes = max(len(tree["value"]) for tree in trees)
        if len(trees) > MAX_TREES or nodes > MAX_TREE_NODES:
            raise ModelFileError(f"it has {len(trees)} trees of up to {nodes} nodes; a suggester model has at most "
                                 f"{MAX_TREES} trees of at most {MAX_TREE_NODES} nodes")
        if not float(data["learning_rate"]) > 0:
            raise ModelFileError("the trees' learning_rate must be positive")
        shape = (len(trees), nodes)
        feature, left, right = (np.zeros(shape, dtype=np.int64) for _ in range(3))
        threshold, value = np.zeros(shape), np.zeros(shape)
        depth = 0
        for index, tree in enumerate(trees):
            columns = [np.asarray(tree[key]) for key in ("feature", "threshold", "left", "right", "value")]
            size = len(columns[-1])
            if any(column.shape != (size,) for column in columns):
                raise ModelFileError(f"tree {index}: feature, threshold, left, right and value differ in length")
            if not all(np.issubdtype(column.dtype, np.integer) for column in (columns[0], *columns[2:4])):
                raise ModelFileError(f"tree {index}: feature, left and right must be whole numbers")
            own = np.arange(size)
            inner = columns[2] >= 0
            children = np.where(inner, columns[2], own), np.where(inner, columns[3], own)
            after = (children[0] > own) & (children[1] > own) & (np.maximum(*children) < size)
            in_range = (columns[0] >= 0) & (columns[0] < features)
            if not (after & in_range)[inner].all():
                raise ModelFileError(f"tree {index} is malformed (children or features out of range)")
            feature[index, :size] = np.where(inner, columns[0], 0)
            threshold[index, :size], value[index, :size] = columns[1], columns[4]
            left[index] = right[index] = np.arange(nodes)
            left[index, :size], right[index, :size] = children
            levels = np.zeros(size, dtype=np.int64)
            for node in np.flatnonzero(inner):  # children come after their node: one pass gives the depths
                levels[children[0][node]] = levels[children[1][node]] = levels[node] + 1
            depth = max(depth, int(levels.max()))
        return cls(init=float(data["init"]), learning_rate=float(data["learning_rate"]), feature=feature,
                   threshold=threshold, left=left, right=right, value=value, depth=depth)

    def _paths(self, matrix: np.ndarray) -> list[np.ndarray]:
        """The node of every (row, tree) at each step from the root to the leaves: depth + 1 arrays."""
        values = np.asarray(matrix, dtype=np.float32).astype(np.float64)
        rows = np.arange(len(values))[:, None]
        trees = np.arange(self.feature.shape[0])[None, :]
        node = np.zeros((len(values), self.feature.shape[0]), dtype=np.int64)
        path = [node]
        for _ in range(self.depth):
            goes_left = values[rows, self.feature[trees, node]] <= self.threshold[trees, node]
            node = np.where(goes_left, self.left[trees, node], self.right[trees, node])
            path.append(node)
        return path

    def raw(self, matrix: np.ndarray) -> np.ndarray:
        """The raw scores (log-odds of accept) of rows of feature values."""
        leaves = self._paths(matrix)[-1]
        return self.init + self.learning_rate * self.value[np.arange(self.feature.shape[0])[None, :], leaves].sum(1)

    def contributions(self, vector: np.ndarray) -> np.ndarray:
        """Per feature, what the splits on it added to one row's raw score (the value after the split less the
        value before it, summed over the trees' paths)."""
        path = self._paths(vector[None, :])
        trees = np.arange(self.feature.shape[0])
        result = np.zeros(len(vector))
        for parent, child in zip(path, path[1:]):
            moved = parent[0] != child[0]
            np.add.at(result, self.feature[trees[moved], parent[0][moved]],
                      self.learning_rate * (self.value[trees[moved], child[0][moved]]
                                            - self.value[trees[moved], parent[0][moved]]))
        return result


@dataclass(frozen=True)
class Suggester:
    """A trained suggester model (its JSON form, see the module docstring), ready to score answers."""

    name: str
    feature_names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coefficients: np.ndarray
    intercept: float
    calibration: tuple[float, float]  # (a, b): p_accept = 1 / (1 + exp(a * decision + b)), sklearn's sigmoid
    threshold: float = 0.5
    data: dict[str, Any] | None = None  # the whole file: training data hash, cross-validated figures
    trees: BoostedTrees | None = None  # format 2: the decision is the mean of the regression's and the trees'
    priors: QuestionPriors | None = None  # with the feature `question_prior`: its value for each question

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Suggester:
        """:raises ModelFileError: not a suggester model, its features are not ones this version computes, or a
        number is not finite, out of bounds (`MAX_MAGNITUDE`) or out of its range (scales, the threshold)."""
        if not isinstance(data, dict) or data.get("format") not in READABLE_FORMATS:
            raise ModelFileError(f"not a suggester model (format {' or '.join(map(repr, READABLE_FORMATS))} "
                                 "expected)")
        problem = bad_number(data)
        if problem:
            raise ModelFileError(problem)
        try:
            names = tuple(data["features"])
            priors = QuestionPriors.from_dict(data["question_priors"]) if "question_priors" in data else None
            unknown = [name for name in names if name not in FEATURES and not (name == QUESTION_PRIOR and priors)]
            if unknown:
                raise ModelFileError(f"the model uses features this version does not compute: {', '.join(unknown)}")
            arrays = [np.asarray(data[key], dtype=np.float64) for key in ("mean", "scale", "coefficients")]
            if any(array.shape != (len(names),) for array in arrays):
                raise ModelFileError("the model's means, scales and coefficients must have one value per feature")
            if not (arrays[1] > 0).all():
                raise ModelFileError("the model's scales must be positive (features are divided by them)")
            if not 0 < float(data.get("threshold", 0.5)) < 1:
                raise ModelFileError(f"the threshold must lie between 0 and 1, got {data['threshold']!r}")
            calibration = data["calibration"]
            trees = BoostedTrees.from_dict(data["trees"], len(names)) if data["format"] == MODEL_FORMAT else None
            return cls(name=str(data["name"]), feature_names=names, mean=arrays[0], scale=arrays[1],
                       coefficients=arrays[2], intercept=float(data["intercept"]),
                       calibration=(float(calibration["a"]), float(calibration["b"])),
                       threshold=float(data.get("threshold", 0.5)), data=data, trees=trees, priors=priors)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
            if isinstance(error, ModelFileError):
                raise
            raise ModelFileError(f"the model file is incomplete or malformed: {error!r}") from None

    @classmethod
    def load(cls, path: Path | str | None = None) -> Suggester:
        """The model in `path` (default: the shipped one), checked whole before it is used: its size and nesting
        before it is parsed (a huge or deeply nested file would exhaust memory or the stack), then every number
        and array (`from_dict`). :raises OSError: :raises ModelFileError: naming the file and what is wrong."""
        path = Path(path) if path is not None else SHIPPED_MODEL
        try:
            return cls.from_dict(_parsed_model_file(path))
        except ModelFileError as error:
            raise ModelFileError(f"the suggester file {path} cannot be used: {error}") from None

    def linear_decision(self, matrix: np.ndarray) -> np.ndarray:
        """The logistic regression's decision values of rows of feature values (in `feature_names` order)."""
        return ((matrix - self.mean) / self.scale) @ self.coefficients + self.intercept

    def decision(self, matrix: np.ndarray) -> np.ndarray:
        """The decision values (uncalibrated log-odds of accept) of rows of feature values: the regression's,
        averaged with the trees' raw scores where the model has trees."""
        linear = self.linear_decision(matrix)
        return linear if self.trees is None else (linear + self.trees.raw(matrix)) / 2

    def probability(self, matrix: np.ndarray) -> np.ndarray:
        """The calibrated probability of "accept" for rows of feature values."""
        a, b = self.calibration
        return 1.0 / (1.0 + np.exp(a * self.decision(matrix) + b))

    def contributions(self, vector: np.ndarray) -> dict[str, float]:
        """What each feature added to one row's decision value (+ = towards accept): coefficient x scaled value,
        averaged with the trees' path contributions where the model has trees."""
        linear = (vector - self.mean) / self.scale * self.coefficients
        both = linear if self.trees is None else (linear + self.trees.contributions(vector)) / 2
        return dict(zip(self.feature_names, both.tolist()))

    def values(self, support: dict[str, Any] | None, passages: list[dict[str, Any]] | None, answer: str | None,
               question: str | None = None) -> dict[str, float]:
        """`features`, plus the question's prior where the model has one (and `question_seen`, for the reasons)."""
        values = features(support, passages, answer, question)
        if self.priors is not None:
            seen = self.priors.seen(question)
            values[QUESTION_PRIOR] = self.priors.log_odds(question)
            values["question_seen"] = float(seen is not None)
            values["question_rate"] = seen[0] / seen[1] if seen else self.priors.base_rate
        return values

    def suggest(self, support: dict[str, Any] | None, passages: list[dict[str, Any]] | None, answer: str | None,
                question: str | None = None) -> dict[str, Any]:
        """{"verdict": "accept" | "reject", "p_accept": float (4 places), "reasons": [str], "model": name}."""
        values = self.values(support, passages, answer, question)
        vector = feature_vector(values, self.feature_names)
        p_accept = float(self.probability(vector[None, :])[0])
        verdict = "accept" if p_accept >= self.threshold else "reject"
        return {"verdict": verdict, "p_accept": round(p_accept, 4),
                "reasons": reasons(values, support_facts(support), self.contributions(vector), verdict),
                "model": self.name}


def json_nesting(text: str) -> int:
    """How deep the brackets of a JSON text nest (those inside strings not counted), in one pass."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')  # one character per step: no backtracking beyond the string
_BRACKET = re.compile(r"[\[\]{}]")


def _parsed_model_file(path: Path) -> Any:
    """The file's JSON, read only when its size and nesting are within bounds. :raises ModelFileError:"""
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise ModelFileError(f"it is {size:,} bytes; a suggester model is at most {MAX_MODEL_BYTES:,}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ModelFileError(f"it is not UTF-8 text: {error}") from None
    depth = json_nesting(text)
    if depth > MAX_NESTING:
        raise ModelFileError(f"its brackets nest {depth} deep; a suggester model nests at most {MAX_NESTING} deep")
    try:
        return json.loads(text)
    except ValueError as error:  # JSONDecodeError, or an integer of more digits than Python converts
        raise ModelFileError(f"it is not JSON: {error}") from None


def bad_number(value: Any, where: str = "the file") -> str | None:
    """What is wrong with the first number of a parsed model file that is not finite or beyond `MAX_MAGNITUDE`
    (naming where it is, e.g. "calibration.a"), or None when every number is fine."""
    if isinstance(value, bool) or not isinstance(value, int | float | dict | list):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where} is {value}, not a finite number"
    if isinstance(value, int | float):
        if abs(value) <= MAX_MAGNITUDE:
            return None
        size = f"an integer of {len(str(abs(value)))} digits" if isinstance(value, int) else f"{value:g}"
        return f"{where} is {size}; a suggester model's numbers lie within ±{MAX_MAGNITUDE:g}"
    items = value.items() if isinstance(value, dict) else enumerate(value)
    prefix = "" if where == "the file" else where
    for key, item in items:
        problem = bad_number(item, f"{prefix}[{key}]" if isinstance(value, list) else f"{prefix}.{key}".lstrip("."))
        if problem:
            return problem
    return None


def model_path(settings: Settings) -> Path:
    """The model in force: `<data dir>/models/suggester.json` when one was trained there, else the shipped one."""
    local = settings.data_dir / LOCAL_MODEL
    return local if local.exists() else SHIPPED_MODEL


@lru_cache(maxsize=4)
def _cached(path: str, mtime_ns: int) -> Suggester:
    return Suggester.load(path)


def load_suggester(path: Path | str | None = None) -> Suggester:
    """`Suggester.load`, kept once per file and version of it (a retrained file is read again)."""
    path = Path(path) if path is not None else SHIPPED_MODEL
    return _cached(str(path), path.stat().st_mtime_ns)


def suggest(support: dict[str, Any] | None, passages: list[dict[str, Any]] | None, answer: str | None,
            question: str | None = None, model_path: Path | str | None = None) -> dict[str, Any]:
    """The suggestion of the model in `model_path` (default: the shipped one) for one answer."""
    return load_suggester(model_path).suggest(support, passages, answer, question)


@dataclass(frozen=True)
class ModelInForce:
    """The suggester that suggests now, and `note`: why the data directory's own model is not it, when that file
    cannot be used."""

    suggester: Suggester
    note: str | None = None


def suggester_in_force(settings: Settings) -> ModelInForce:
    """The model of `model_path`; when that is a file in the data directory that cannot be used (unreadable, not a
    model, a number or tree out of bounds), the shipped model, with a note naming the file and what is wrong (the
    CLI prints it, the app shows it, and it is logged once per version of the file).

    :raises OSError: :raises ModelFileError: the shipped model itself cannot be used."""
    path = model_path(settings)
    return _in_force(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=4)
def _in_force(path: str, mtime_ns: int) -> ModelInForce:
    try:
        return ModelInForce(Suggester.load(path))
    except (OSError, ModelFileError) as error:
        if Path(path) == SHIPPED_MODEL:
            raise
        shipped = load_suggester()
        note = f"{error}; the shipped model {shipped.name} suggests instead"
        logger.warning("%s", note)
        return ModelInForce(shipped, note)


def suggester_note_or_none(settings: Settings) -> str | None:
    """What the CLI and the app say about the model in force: why the data directory's file is not used, or that
    no suggestions can be made at all; None when all is well."""
    try:
        return suggester_in_force(settings).note
    except (OSError, ModelFileError) as error:
        return f"no verdict suggestions: {error}"


def suggestion_or_none(settings: Settings, support: dict[str, Any] | None, passages: list[dict[str, Any]] | None,
                       answer: str | None, question: str | None = None) -> dict[str, Any] | None:
    """The suggestion of the model in force (`suggester_in_force`), or None, logged, when not even the shipped model
    can be read: a broken model must not stop answers from being shown and reviewed."""
    try:
        suggester = suggester_in_force(settings).suggester
    except (OSError, ModelFileError) as error:
        logger.warning("no verdict suggestion: %s", error)
        return None
    return suggester.suggest(support, passages, answer, question)


def export_suggestion(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """A record's `suggestion` as exports carry it: {"verdict": "accept" | "reject", "p_accept": number,
    "reasons": [str], "model": str}, or None for a record not analysed (or holding no well-formed suggestion)."""
    if not isinstance(stored, dict) or stored.get("verdict") not in VERDICTS:
        return None
    try:
        p_accept = float(stored["p_accept"])
    except (KeyError, TypeError, ValueError):
        return None
    if not math.isfinite(p_accept):  # stored by a version that let a NaN model through: no suggestion to export
        return None
    return {"verdict": stored["verdict"], "p_accept": p_accept,
            "reasons": [str(reason) for reason in stored.get("reasons") or []], "model": str(stored.get("model") or "")}
