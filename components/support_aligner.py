"""Which passage sentences support each sentence of an answer: MiniLM similarity plus content-word overlap.

How the defaults were picked (bench/calibrate_support.py; bench/README.md, "Support calibration"): on the 1680
Kommineni et al. (2024) mixtral_8_22b records in ../shared, the 2574 sentences of non-abstaining answers were
scored against their own record's passages (positives) and against the passages of another paper's record for
the same question (negatives). A grid over semantic_weight (0, 0.05, ..., 1) and min_score (steps of 0.01)
maximised balanced accuracy: semantic_weight 0.6, min_score 0.39 (precision 0.85, recall 0.54, F1 0.66,
balanced accuracy 0.72; weights 0.5 to 0.75 are within 0.003 of it, either score alone is worse).
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from haystack import component, default_from_dict, default_to_dict

from components.sentence_model import SentenceEncoder, SentenceEncoderFactory
from components.sentences import sentence_spans

DEFAULT_MIN_SCORE = 0.39
DEFAULT_SEMANTIC_WEIGHT = 0.6
DEFAULT_MAX_EVIDENCE = 3
# Texts per forward pass. The model pads a batch to its longest text; sorted by length (sentence-transformers
# sorts), small batches waste little on padding: about half the CPU time of one batch of 64 on real records.
ENCODE_BATCH = 8
# Passage sentences whose embeddings an aligner keeps (about 1.5 kB each for MiniLM): retrieved chunks recur from
# answer to answer, and a recurring sentence is not embedded again.
CACHE_SIZE = 20_000
# Passages whose sentence split (spans, cleaned texts, content words) is kept: about a tenth of an analysis's time
# on the study's records once the embeddings come from the cache.
PASSAGE_CACHE_SIZE = 4096
# Texts embedded between two looks at the clock when a run or prepare has a deadline.
DEADLINE_CHUNK = 64
# Records whose texts `SupportAligner.prepare` embeds together at most, in the order given (review.analysis_worker).
PREPARE_RECORDS = 8

# Citation markers such as "[1]", "[2][3]", "[1, 4]" or "[2-3]"; they are not part of the claim. ("[0, 1]" is
# an interval, not a citation: passages are numbered from 1 in answers.) Leading whitespace is taken from the start
# of its run only ("(?<!\s)"): retried at every space of a long run of spaces before a non-citation it cost O(n²).
CITATION = re.compile(r"(?:(?<!\s)\s+)?\[\s*[1-9]\d*(?:\s*[-\u2013,;]\s*[1-9]\d*)*\s*\]")

# --- Abstention: the answer says the context lacks the information. ------------------------------------------
# Written from the answers in ../shared/data/kommineni2024/records/mixtral_8_22b (1680 answers, 9490 sentences;
# the phrasings there: "The given context does not provide...", "Unfortunately, there isn't enough information
# available...", "I cannot provide...", "... is not explicitly mentioned in the provided text", "it is not
# possible to determine...", "without further information, ...", "I don't know").
_SOURCE = (
    r"(?:(?:given|provided|available|above|supplied|shared|retrieved|cited|mentioned|following|referenced|"
    r"accompanying)\s+)?"
    r"(?:context|contexts|text|texts|information|info|passages?|excerpts?|snippets?|documents?|sources?|papers?|"
    r"articles?|references?|pieces\s+of\s+(?:context|information|text)|stud(?:y|ies)|research|authors?|"
    r"manuscript|publications?|content|materials?|tables?|figures?)"
)
_SOURCE_AFTER = r"(?:\s+(?:provided|given|above|mentioned|cited|available|shared|here|supplied|referenced|listed))?"
_VERB = (
    r"(?:provide|mention|contain|include|specify|state|discuss|describe|give|offer|indicate|say|detail|reveal|"
    r"address|cover|report|list|present|explain|clarify|elaborate|outline|disclose|identify|define|talk|refer|"
    r"show|have|share|appear|seem|make|explicitly|directly|specifically|clearly)"
)
_TEXT_VERB = r"(?:mention|specify|state|discuss|say|detail|describe|disclose|elaborate|clarify|reveal|share)"
_ADVERB = r"(?:explicitly|directly|specifically|clearly|definitively|exactly|accurately|precisely|expressly)"
_NEGATED_BE = r"(?:(?:is|are|was|were|be|been)\s+not|isn't|aren't|wasn't|weren't)"

ABSTENTION_PATTERNS: tuple[str, ...] = (
    # "I don't know", "I do not have enough information"
    r"\bI\s+(?:do\s*n[o']t|don't|dont)\s+(?:know|have\s+(?:enough|sufficient|any|the|access))\b",
    # "I'm not sure", "I am unable to", "I'm sorry"
    r"\bI(?:'m| am)\s+(?:not\s+(?:sure|certain|aware|able)|unable\s+to|sorry)\b",
    # "I cannot find / provide / determine ..."
    r"\bI\s+(?:cannot|can\s*not|can't|could\s*not|couldn't|was\s+unable\s+to|am\s+unable\s+to)\s+(?:\w+\s+)?"
    r"(?:find|provide|determine|answer|say|identify|give|locate|confirm|tell|specify|offer|state)",
    # "The (given) context / text / paper (provided) does not (explicitly) mention / provide ..."
    r"\b(?:the|this|these|that)\s+(?:\w+\s+){0,2}?" + _SOURCE + _SOURCE_AFTER
    + r"\s+(?:does|do|did)\s*(?:not|n't)\s+(?:\w+\s+)?" + _VERB,
    # "..., but (it) does not explicitly mention / specify ..."
    r"\b(?:does|do|did)\s*(?:not|n't)\s+(?:" + _ADVERB + r"\s+)?" + _TEXT_VERB + r"\b",
    # "it does not provide any details / information"
    r"\bit\s+(?:does|did)\s*(?:not|n't)\s+(?:\w+\s+)?(?:provide|give|offer|contain|include)\s+"
    r"(?:any\s+|specific\s+|explicit\s+|further\s+|more\s+|concrete\s+)*"
    r"(?:details?|information|specifics|mention|links?)\b",
    # "there is no / isn't enough / isn't any explicit information / mention ..."
    r"\bthere(?:\s+(?:is|are|was|were|seems\s+to\s+be|appears?\s+to\s+be)|'s)\s+(?:not|no|little|insufficient)\s+"
    r"(?:an?\s+)?(?:enough\s+|sufficient\s+|any\s+|explicit\s+|direct\s+|specific\s+|clear\s+|detailed\s+|"
    r"further\s+|additional\s+|relevant\s+|mention\s+)*"
    r"(?:information|mention|details?|indication|reference|data\s+(?:provided|available|given)|evidence|context|"
    r"description|discussion|statement)\b",
    r"\bthere\s+(?:isn't|aren't|wasn't|weren't|(?:does|do)\s*(?:not|n't)\s+(?:seem|appear)\s+to\s+be)\s+"
    r"(?:an?\s+)?(?:enough\s+|sufficient\s+|any\s+|explicit\s+|direct\s+|specific\s+|"
    r"clear\s+|detailed\s+|further\s+|additional\s+|relevant\s+|mention\s+)*"
    r"(?:information|mention|details?|indication|reference|data\s+(?:provided|available|given)|evidence|context|"
    r"description|discussion|statement)\b",
    # "no (explicit) information is provided", "no mention of"
    r"\bno\s+(?:explicit\s+|direct\s+|specific\s+|clear\s+|further\s+|additional\s+|relevant\s+|detailed\s+)*"
    r"(?:information|mention|details?|indication)\s+(?:is\s+|was\s+|are\s+|were\s+)?"
    r"(?:provided|given|available|mentioned|found|about|of|on|regarding|related|in\s+the)",
    # "no mention is made of"
    r"\bno\s+(?:explicit\s+|direct\s+|specific\s+|clear\s+)*mention\s+(?:is|was|has\s+been)\s+made\b",
    # "there are no X mentioned in the context"
    r"\bno\b[^.]{0,80}?\b(?:mentioned|specified|provided|stated|given|described|found)\s+in\s+the\s+" + _SOURCE,
    # "X is not specified / mentioned / provided in the (given) context / text"
    _NEGATED_BE + r"\s+(?:" + _ADVERB + r"\s+)?(?:specified|mentioned|provided|stated|given|described|discussed|"
    r"detailed|included|reported|disclosed|available|present|addressed|indicated|defined|outlined|clear)\s+"
    r"(?:\w+\s+){0,3}?(?:in|within|from)\s+(?:the|this|these)\s+(?:\w+\s+){0,2}?" + _SOURCE,
    # "X is not (explicitly) stated / mentioned / specified."
    r"\b" + _NEGATED_BE + r"\s+(?:" + _ADVERB + r"\s+)?(?:stated|mentioned|specified|disclosed|reported)\b",
    # "although not explicitly mentioned in the given context"
    r"\bnot\s+(?:" + _ADVERB + r"\s+)?(?:mentioned|specified|stated|provided|described|discussed|available)\s+"
    r"(?:anywhere\s+)?(?:in|within)\s+the\s+(?:\w+\s+){0,2}?" + _SOURCE,
    r"\bnot\s+(?:be\s+)?(?:readily\s+)?available\s+(?:in|within|from)\s+(?:the|this)\b",
    # "X does not appear to be explicitly stated in the provided context"
    r"\b(?:does|do)\s*(?:not|n't)\s+(?:appear|seem)\s+to\s+(?:be|have\s+been)\s+(?:" + _ADVERB + r"\s+)?"
    r"(?:stated|mentioned|specified|provided|described|discussed|given|reported)\b",
    # "it does not appear that X was mentioned"
    r"\b(?:does|do)\s*(?:not|n't)\s+(?:appear|seem)\s+that\b[^.]{0,400}\b(?:mentioned|provided|stated|specified|given|"
    r"disclosed|shared|discussed)\b",
    # "it is not possible / unclear to determine ...", "it would be impossible to say"
    r"\b(?:it\s+is|it's|it\s+remains|remains|it\s+would\s+be|would)\s+(?:not\s+(?:be\s+)?possible|impossible|"
    r"unclear|uncertain|difficult|challenging|hard|unknown)\s+(?:to\s+(?:\w+\s+)?(?:determine|say|know|provide|"
    r"answer|identify|tell|ascertain|confirm|specify|infer|conclude|state|pinpoint|find)|what|which|whether|how|"
    r"if|where|who)\b",
    # "it cannot be determined / confirmed"
    r"\bcannot\s+be\s+(?:" + _ADVERB + r"\s+)?(?:determined|confirmed|inferred|ascertained|concluded|established|"
    r"identified|known|said|stated|answered|found|verified)\b",
    # "X remains unknown / unclear / unspecified"
    r"\bremains?\s+(?:unknown|unclear|uncertain|unspecified|unmentioned|undisclosed)\b",
    # "there is no clear answer"
    r"\bno\s+(?:clear\s+|definitive\s+|direct\s+|definite\s+|straightforward\s+)?answer\b",
    # "without more / further / explicit information / details / context / mention, ..."
    r"\bwithout\s+(?:more|further|additional|specific|explicit|detailed|access\s+to|the\s+full|the\s+complete|"
    r"more\s+specific|more\s+detailed)\s+(?:\w+\s+){0,3}?(?:information|details|context|data|text|confirmation|"
    r"mention|evidence)\b",
    # "we / one cannot (definitively) determine"
    r"\b(?:we|one)\s+(?:cannot|can\s*not|can't|could\s*not|are\s+unable\s+to)\s+(?:" + _ADVERB + r"\s+)?"
    r"(?:determine|say|know|provide|answer|identify|confirm|conclude|tell|specify|infer|state)\b",
    # "information about X is not available / missing"
    r"\b(?:information|details?)\s+(?:\w+\s+){0,16}?(?:is|are)\s+(?:not\s+(?:available|provided|given|included|"
    r"present|mentioned|specified)|unavailable|missing|lacking)\b",
)
ABSTENTION = re.compile("|".join(f"(?:{pattern})" for pattern in ABSTENTION_PATTERNS), re.IGNORECASE)

# "Although not mentioned in the context, L2 regularization is common." states a claim from outside the context:
# when every abstention phrase lies in such a leading concessive clause, the sentence is scored like a claim.
_CONCESSIVE = re.compile(
    r"^(?:[\w ]{1,30},\s*)?(?:although|though|even\s+though|even\s+if|while|whilst)\b[^,]*,", re.IGNORECASE
)

# --- Lexical overlap ------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"\d+(?:\.\d+)+|[^\W_]+")
_NUMBER = re.compile(r"\d+(?:\.\d+)*")
# A hyphen, then whitespace holding a line break, then a letter. The lookahead finds the line break; "\s*\n\s*"
# tried every line break of a run of them against every split ("a-" + "\n" * n + "!": O(n²), 11 s at n = 16,000).
_LINE_HYPHEN = re.compile(r"(\w)-(?=[^\S\n]*\n)\s+(\w)")
STOPWORDS = frozenset(
    """
    a about above after again against all almost along also although always am among an and another any are
    around as at be because been before being below between both but by can cannot could did do does doing done
    down during each either else etc even ever every few for from further had has have having he her here hers
    herself him himself his how however i if in into is it its itself just least less like made make makes many
    may me might more moreover most much must my myself neither no nor not now of off often on once one only onto
    or other others otherwise our ours ourselves out over own per perhaps rather same several shall she should
    since so some such than that the their theirs them themselves then there thereby therefore these they this
    those though through thus to too toward towards under until up upon us very via was we well were what whatever
    when where whereas whether which while who whom whose why will with within without would yet you your yours
    yourself yes s t d ll m re ve
    also based according given provided mentioned mention mentions context text information specific specifically
    explicitly directly particular certain various used use using uses
    """.split()
)


_UNCHANGED = frozenset({"bias", "alias", "atlas", "canvas", "lens", "gas", "series", "species", "always"})


def normalise_word(word: str) -> str:
    """Light stemming of a lower-case word: plural 's', '-ing' and '-ed' are dropped when a stem of at least four
    letters remains ('models' -> 'model', 'studies' -> 'study', 'trained' / 'training' -> 'train')."""
    if word.isdigit() or word in _UNCHANGED:
        return word
    if word.endswith("ses") and word[:-2] in _UNCHANGED:
        return word[:-2]  # 'biases' -> 'bias'
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith("sses"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            if len(word) >= 4 and word[-1] == word[-2] and word[-1] not in "aeiouls":
                word = word[:-1]  # 'stopped' -> 'stop', like 'stopping'
            break
    return word


def clean_text(text: str) -> str:
    """Text as the model and the word matcher see it: ligatures unfolded, line-break hyphens and citations removed."""
    text = unicodedata.normalize("NFKC", text)
    text = _LINE_HYPHEN.sub(r"\1\2", text)
    text = CITATION.sub("", text)
    return " ".join(text.split())


_ANSWER_PREFIX = re.compile(r"^(?:(?:answer\s*:+|\d{1,2}[.)]|[-*\u2022#]+)\s*)+", re.IGNORECASE)


def clean_answer_text(text: str) -> str:
    """clean_text, also without markdown emphasis and a leading list marker or "Answer:" label."""
    return _ANSWER_PREFIX.sub("", clean_text(text.replace("**", "").replace("__", "")))


def content_words(text: str) -> frozenset[str]:
    """The normalised content words of already cleaned text: lower case, no stopwords, light stemming."""
    words = set()
    for token in _TOKEN.findall(text.lower()):
        if token in STOPWORDS or (len(token) < 2 and not token.isdigit()):
            continue
        words.add(normalise_word(token))
    return frozenset(words)


def lexical_overlap(answer_words: list[frozenset[str]], passage_words: list[frozenset[str]]) -> np.ndarray:
    """[i, j] = share of answer sentence i's content words found in passage sentence j (0 when i has none)."""
    result = np.zeros((len(answer_words), len(passage_words)), dtype=np.float32)
    if not answer_words or not passage_words:
        return result
    vocabulary: dict[str, int] = {}
    for words in answer_words:
        for word in words:
            vocabulary.setdefault(word, len(vocabulary))
    if not vocabulary:
        return result
    answers = np.zeros((len(answer_words), len(vocabulary)), dtype=np.float32)
    for row, words in enumerate(answer_words):
        answers[row, [vocabulary[word] for word in words]] = 1.0
    passages = np.zeros((len(passage_words), len(vocabulary)), dtype=np.float32)
    for row, words in enumerate(passage_words):
        columns = [vocabulary[word] for word in words if word in vocabulary]
        passages[row, columns] = 1.0
    sizes = answers.sum(axis=1, keepdims=True)
    return np.divide(answers @ passages.T, sizes, out=result, where=sizes > 0)


class TimeLimitExceeded(TimeoutError):
    """An analysis given a deadline (`SupportAligner.run(..., deadline=...)`) did not end by it."""


def check_deadline(deadline: float | None) -> None:
    """Raise TimeLimitExceeded when `deadline` (a `time.monotonic()` time; None: none) has passed."""
    if deadline is not None and time.monotonic() > deadline:
        raise TimeLimitExceeded("the analysis ran past its time limit")


# --- Sentences ------------------------------------------------------------------------------------------------
@dataclass
class AnswerSentence:
    """One answer sentence: its span in the answer, the text scored, and what the abstention patterns say."""

    start: int
    end: int
    text: str
    clean: str
    words: frozenset[str]
    abstention: bool = False
    hedged: bool = False


@dataclass
class PassageSentence:
    """One passage sentence with content words: passage number, span inside the passage, scored text."""

    passage: int
    start: int
    end: int
    clean: str
    words: frozenset[str] = field(default_factory=frozenset)


def abstention_kind(text: str) -> tuple[bool, bool]:
    """(abstains, hedged) for one cleaned sentence; hedged = its abstention phrases all sit in a leading
    'although / while ... ,' clause, so the sentence's main clause is a claim."""
    matches = list(ABSTENTION.finditer(text))
    if not matches:
        return False, False
    clause = _CONCESSIVE.match(text)
    if clause and all(match.end() <= clause.end() for match in matches):
        return False, True
    return True, False


def _is_fragment(clean: str) -> bool:
    """No content word but numbers, and no abstention: "Yes.", "1.", "[2]"."""
    return all(_NUMBER.fullmatch(word) for word in content_words(clean)) and not ABSTENTION.search(clean)


def answer_sentences(answer: str) -> list[AnswerSentence]:
    """The answer's sentences; a piece without content words ("Yes.", "1.", a lone "[2]") joins the next
    sentence (the previous one at the end) so that it is judged with the claim it belongs to."""
    pieces = [(start, end, clean_answer_text(answer[start:end])) for start, end in sentence_spans(answer)]
    merged: list[list[int]] = []  # [start, end] spans
    pending: int | None = None  # start of fragments waiting for the next sentence
    for position, (start, end, clean) in enumerate(pieces):
        if not _is_fragment(clean):
            merged.append([start if pending is None else pending, end])
            pending = None
        elif pending is None and merged and position == len(pieces) - 1:
            merged[-1][1] = end  # a trailing fragment joins the previous sentence
        elif pending is None:
            pending = start
    if pending is not None:  # the answer ends with fragments after fragments, or is nothing else
        if merged:
            merged[-1][1] = pieces[-1][1]
        else:
            merged.append([pending, pieces[-1][1]])
    sentences = []
    for start, end in merged:
        clean = clean_answer_text(answer[start:end])
        abstains, hedged = abstention_kind(clean)
        sentences.append(AnswerSentence(start, end, answer[start:end], clean, content_words(clean), abstains, hedged))
    return sentences


def passage_sentences(passages: list[str], deadline: float | None = None) -> list[PassageSentence]:
    """All sentences of all passages that have at least one content word (the deadline checked per passage)."""
    sentences = []
    for number, passage in enumerate(passages):
        check_deadline(deadline)
        sentences += [PassageSentence(number, start, end, clean, words)
                      for start, end, clean, words in _sentences_of(passage or "")]
    return sentences


@lru_cache(maxsize=PASSAGE_CACHE_SIZE)
def _sentences_of(passage: str) -> tuple[tuple[int, int, str, frozenset[str]], ...]:
    """(start, end, clean text, content words) of each sentence of one passage that has content words; kept for
    the passages seen last, as the five answers to one question, and often the next questions, share them."""
    spans = ((start, end, clean_text(passage[start:end])) for start, end in sentence_spans(passage))
    return tuple((start, end, clean, words) for start, end, clean in spans if (words := content_words(clean)))


def shares_words(answers: list[AnswerSentence], passages: list[PassageSentence]) -> list[bool]:
    """Which passage sentences share a content word with the answer (all when the answer has none): only these
    can reach a usual min_score, so only these need embedding."""
    vocabulary = frozenset().union(*(sentence.words for sentence in answers)) if answers else frozenset()
    if not vocabulary:
        return [True] * len(passages)
    return [not candidate.words.isdisjoint(vocabulary) for candidate in passages]


def encode(encoder: SentenceEncoder, texts: list[str], cache: OrderedDict[str, np.ndarray] | None = None,
           cached: Callable[[str], bool] = lambda text: True, deadline: float | None = None) -> np.ndarray:
    """Unit-length float32 embeddings of texts from one call to the encoder, each distinct text once. With a cache (least recently used first), texts found there are not embedded again
    and new texts for which `cached` is true are added; it keeps at most CACHE_SIZE texts. With a deadline, the
    texts are embedded DEADLINE_CHUNK at a time, the clock checked before each call."""
    cache = cache if cache is not None else OrderedDict()
    found = {text: cache[text] for text in dict.fromkeys(texts) if text in cache}
    for text in found:
        cache.move_to_end(text)
    missing = [text for text in dict.fromkeys(texts) if text not in found]
    if missing:
        vectors = _embed(encoder, missing, deadline)
        for text, vector in zip(missing, vectors):
            found[text] = vector
            if cached(text):
                cache[text] = vector
        while len(cache) > CACHE_SIZE:
            cache.popitem(last=False)
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    return np.stack([found[text] for text in texts])


def _embed(encoder: SentenceEncoder, texts: list[str], deadline: float | None) -> np.ndarray:
    step = len(texts) if deadline is None else DEADLINE_CHUNK
    parts = []
    for first in range(0, len(texts), step):
        check_deadline(deadline)
        parts.append(np.asarray(encoder.encode(texts[first : first + step], batch_size=ENCODE_BATCH), dtype=np.float32))
    return np.concatenate(parts)


def score_matrices(
    answers: list[AnswerSentence], passages: list[PassageSentence], answer_vectors: np.ndarray,
    passage_vectors: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(semantic, lexical): cosine similarities and content-word overlap, answer sentences x passage sentences.
    For an answer sentence without content words the lexical score is set to the semantic one (it has no words
    to match, so the model alone decides)."""
    semantic = (answer_vectors @ passage_vectors.T).astype(np.float32) if len(passages) else np.zeros(
        (len(answers), 0), dtype=np.float32)
    lexical = lexical_overlap([sentence.words for sentence in answers], [sentence.words for sentence in passages])
    for row, sentence in enumerate(answers):
        if not sentence.words:
            lexical[row] = semantic[row]
    return semantic, lexical


# --- The support map ------------------------------------------------------------------------------------------
SentenceKind = Literal["claim", "generic", "abstention"]


@dataclass(frozen=True)
class SupportEvidence:
    """One passage sentence supporting an answer sentence: its passage (numbered from 0), its character span
    there, its text, and the combined, semantic and lexical scores (rounded to 4 places)."""

    passage: int
    start: int
    end: int
    text: str
    score: float
    semantic: float
    lexical: float

    def to_dict(self) -> dict[str, Any]:
        return {"passage": self.passage, "start": self.start, "end": self.end, "text": self.text,
                "score": self.score, "semantic": self.semantic, "lexical": self.lexical}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SupportEvidence:
        return cls(passage=data["passage"], start=data["start"], end=data["end"], text=data["text"],
                   score=data["score"], semantic=data["semantic"], lexical=data["lexical"])


@dataclass(frozen=True)
class SentenceSupport:
    """One answer sentence: its index and span in the answer, whether it is supported, its kind ("claim",
    "generic" for outside knowledge, "abstention"), its best score and its evidence, best first. An unsupported
    sentence has no evidence but says where it came `closest` (the best passage sentence, below min_score), so a
    reviewer can see how near the passages came."""

    index: int
    text: str
    start: int
    end: int
    supported: bool
    kind: SentenceKind
    score: float
    evidence: list[SupportEvidence] = field(default_factory=list)
    closest: SupportEvidence | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {"index": self.index, "text": self.text, "start": self.start, "end": self.end,
                "supported": self.supported, "kind": self.kind, "score": self.score,
                "evidence": [item.to_dict() for item in self.evidence]}
        if self.closest is not None:
            data["closest"] = self.closest.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SentenceSupport:
        closest = data.get("closest")
        return cls(index=data["index"], text=data["text"], start=data["start"], end=data["end"],
                   supported=data["supported"], kind=data["kind"], score=data["score"],
                   evidence=[SupportEvidence.from_dict(item) for item in data.get("evidence", [])],
                   closest=SupportEvidence.from_dict(closest) if closest else None)


@dataclass(frozen=True)
class SupportThresholds:
    """The aligner settings a support map was computed with."""

    min_score: float
    semantic_weight: float
    max_evidence: int
    lexical_prefilter: bool

    def to_dict(self) -> dict[str, Any]:
        return {"min_score": self.min_score, "semantic_weight": self.semantic_weight,
                "max_evidence": self.max_evidence, "lexical_prefilter": self.lexical_prefilter}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SupportThresholds:
        return cls(min_score=data["min_score"], semantic_weight=data["semantic_weight"],
                   max_evidence=data["max_evidence"], lexical_prefilter=data["lexical_prefilter"])


@dataclass(frozen=True)
class SupportMap:
    """
    The support of every sentence of one answer, as `SupportAligner.run` returns it. The counts and the abstention
    flag are derived from the sentences. `to_dict()` gives the JSON form stored with a record (record.support)
    and read by the UI and the CLI; `from_dict()` reads it back (the derived keys are recomputed, not read).

    Usage:
    ```python
    support = aligner.run(answer=reply_text, passages=texts)["support"]
    flagged = [sentence.text for sentence in support.sentences if not sentence.supported]
    stored = support.to_dict()  # {"abstains": ..., "sentences": [...], "supported_count": ..., ...}
    assert SupportMap.from_dict(stored) == support
    ```
    """

    sentences: list[SentenceSupport]
    thresholds: SupportThresholds
    model: str

    @property
    def abstention_sentences(self) -> list[int]:
        """The indices of the sentences that say the context lacks the information."""
        return [sentence.index for sentence in self.sentences if sentence.kind == "abstention"]

    @property
    def abstains(self) -> bool:
        """Whether any sentence of the answer is an abstention."""
        return bool(self.abstention_sentences)

    @property
    def supported_count(self) -> int:
        """Supported sentences, abstentions not counted."""
        return sum(1 for sentence in self.sentences if sentence.supported and sentence.kind != "abstention")

    @property
    def unsupported_count(self) -> int:
        """Flagged sentences (claims and generic sentences without support)."""
        return sum(1 for sentence in self.sentences if not sentence.supported)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serialisable form: `abstains`, `abstention_sentences` (indices), `sentences` (index, text,
        start, end, supported, kind, score, evidence: passage, start, end, text, score, semantic, lexical),
        `supported_count`, `unsupported_count` (abstention sentences count in neither), `thresholds`, `model`."""
        return {
            "abstains": self.abstains,
            "abstention_sentences": self.abstention_sentences,
            "sentences": [sentence.to_dict() for sentence in self.sentences],
            "supported_count": self.supported_count,
            "unsupported_count": self.unsupported_count,
            "thresholds": self.thresholds.to_dict(),
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SupportMap:
        """
        :param data: a dict as `to_dict()` writes it.
        :raises KeyError: when a required key is missing.
        """
        return cls(sentences=[SentenceSupport.from_dict(item) for item in data["sentences"]],
                   thresholds=SupportThresholds.from_dict(data["thresholds"]), model=data["model"])


@component
class SupportAligner:
    """
    For each sentence of an answer, finds the passage sentences that support it, so that a reviewer sees which
    claims rest on the retrieved context and which do not.

    Every answer sentence is compared with every passage sentence by
    `score = semantic_weight * cosine(MiniLM embeddings) + (1 - semantic_weight) * overlap`, where overlap is the
    share of the answer sentence's content words (lower case, stopwords removed, plural 's' folded) found in the
    passage sentence. Citation markers such as "[1]" or "[2][3]" are ignored. A sentence is supported when its
    best score reaches `min_score`; its evidence is the best passage sentences at or above it (at most
    `max_evidence`), each with its character span inside its passage.

    Sentences saying that the context lacks the information ("The provided context does not mention...",
    "I don't know") are recognised by regular expressions (`ABSTENTION_PATTERNS`) and get kind "abstention": they
    speak about the context and are never flagged. Unsupported sentences after an abstention, or hedged ones
    ("Although not mentioned in the context, ..."), get kind "generic" (outside knowledge); other unsupported
    sentences kind "claim". `supported` is False exactly for the flagged sentences.
    All sentences are embedded in one batched call (by default only the passage sentences sharing a content word
    with the answer). The model is loaded by `warm_up()` through `SentenceEncoderFactory` (one per model path in
    the process), or by the first `run()` that has something to embed. Each aligner keeps the embeddings of the
    last 20,000 passage sentences it saw, so passages that recur across answers are embedded once; `prepare()`
    embeds the texts of several records in one call ahead of their `run()`.

    Usage:
    ```python
    aligner = SupportAligner(model="/path/to/all-MiniLM-L6-v2")
    aligner.warm_up()
    support = aligner.run(answer=reply_text, passages=[doc.content for doc in documents])["support"]
    flagged = [sentence.text for sentence in support.sentences if not sentence.supported]
    ```
    """

    def __init__(
        self,
        model: str,
        min_score: float = DEFAULT_MIN_SCORE,
        semantic_weight: float = DEFAULT_SEMANTIC_WEIGHT,
        max_evidence: int = DEFAULT_MAX_EVIDENCE,
        lexical_prefilter: bool = True,
        encoder: SentenceEncoder | None = None,
    ) -> None:
        """
        :param model: the sentence-transformers model (local path or id).
        :param min_score: the combined score a passage sentence needs to count as evidence.
        :param semantic_weight: the weight of the cosine similarity; the overlap gets 1 - semantic_weight.
        :param max_evidence: the most evidence sentences listed per answer sentence.
        :param lexical_prefilter: embed only the passage sentences that share a content word with the answer
            (about a third of them in real records; the others could count only through a high similarity
            alone, which calibration found rare); False embeds and scores all.
        :param encoder: the sentence encoder to use instead of the factory's for `model` (not serialised; tests
            pass a stand-in).
        :raises ValueError: when semantic_weight is outside [0, 1], min_score outside [-1, 1] or max_evidence < 1.
        """
        if not 0.0 <= semantic_weight <= 1.0 or not -1.0 <= min_score <= 1.0 or max_evidence < 1:
            raise ValueError(
                f"need 0 <= semantic_weight <= 1, -1 <= min_score <= 1, max_evidence >= 1; "
                f"got {semantic_weight}, {min_score}, {max_evidence}"
            )
        self.model = model
        self.min_score = min_score
        self.semantic_weight = semantic_weight
        self.max_evidence = max_evidence
        self.lexical_prefilter = lexical_prefilter
        self.encoder = encoder
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()  # passage sentence -> embedding
        self._cache_lock = threading.Lock()  # one aligner serves the app's sessions and its background analysis

    def warm_up(self) -> None:
        """
        Loads the sentence model, unless an encoder was given or loaded before (idempotent).

        :raises OSError: when the model cannot be loaded.
        """
        if self.encoder is None:
            self.encoder = SentenceEncoderFactory.get_encoder(self.model)

    def to_dict(self) -> dict[str, Any]:
        """The init parameters, without the encoder."""
        return default_to_dict(
            self, model=self.model, min_score=self.min_score, semantic_weight=self.semantic_weight,
            max_evidence=self.max_evidence, lexical_prefilter=self.lexical_prefilter,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SupportAligner:
        return default_from_dict(cls, data)

    def _needed(self, answer: str, passages: list[str],
                deadline: float | None = None) -> tuple[list[AnswerSentence], list[PassageSentence]]:
        """The answer's sentences and the passage sentences to score them against (prefiltered if so set)."""
        answers = answer_sentences(answer or "")
        candidates = passage_sentences(list(passages or []), deadline)
        if self.lexical_prefilter:
            candidates = [c for c, keep in zip(candidates, shares_words(answers, candidates)) if keep]
        return answers, candidates

    def prepare(self, items: list[tuple[str, list[str]]], deadline: float | None = None) -> int:
        """
        Embeds, in one call to the encoder, what `run` will need for these (answer, passages) pairs and the cache
        lacks: their answer and passage sentences, kept in the cache, so that `run` on each of them embeds
        nothing. Texts of several records share the encoder's batches (sorted by length, little padding): about
        twice the records per second of embedding each record's few sentences alone (bench/README.md). The
        support maps are the same either way.

        :param items: (answer, passage texts) of the records about to be analysed; at most PREPARE_RECORDS are
            useful (a larger list is prepared in chunks of that many).
        :param deadline: as in `run`.
        :returns: how many texts were embedded.
        :raises OSError: when there is something to embed, the aligner was not warmed up and the model cannot
            be loaded.
        """
        embedded = 0
        for first in range(0, len(items), PREPARE_RECORDS):
            texts: list[str] = []
            for answer, passages in items[first : first + PREPARE_RECORDS]:
                answers, candidates = self._needed(answer, passages, deadline)
                if answers and candidates:
                    texts += [s.clean for s in answers] + [c.clean for c in candidates]
            with self._cache_lock:
                missing = [text for text in dict.fromkeys(texts) if text not in self._cache]
                if missing:
                    if self.encoder is None:
                        self.warm_up()
                    encode(self.encoder, missing, self._cache, deadline=deadline)
            embedded += len(missing)
        return embedded

    @component.output_types(support=SupportMap)
    def run(self, answer: str, passages: list[str], deadline: float | None = None) -> dict[str, Any]:
        """
        :param answer: the generated answer.
        :param passages: the retrieved passages' texts, numbered from 0 in this order.
        :param deadline: a `time.monotonic()` time by which to end (checked per passage and per DEADLINE_CHUNK
            texts embedded), or None for no limit.
        :returns: `support`: a `SupportMap`, one `SentenceSupport` per answer sentence (`to_dict()` gives the
            stored JSON form).
        :raises OSError: when there is something to embed, the aligner was not warmed up and the model cannot
            be loaded.
        :raises TimeLimitExceeded: when the deadline passed first.
        """
        answers, candidates = self._needed(answer, passages, deadline)
        if answers and candidates:
            passage_texts = {c.clean for c in candidates}
            if self.encoder is None:
                self.warm_up()
            with self._cache_lock:
                vectors = encode(self.encoder, [s.clean for s in answers] + [c.clean for c in candidates],
                                 self._cache, cached=passage_texts.__contains__, deadline=deadline)
            semantic, lexical = score_matrices(answers, candidates, vectors[: len(answers)], vectors[len(answers) :])
        else:
            semantic = lexical = np.zeros((len(answers), 0), dtype=np.float32)
        combined = self.semantic_weight * semantic + (1.0 - self.semantic_weight) * lexical

        sentences: list[SentenceSupport] = []
        after_abstention = False
        for index, sentence in enumerate(answers):
            evidence = self._evidence(combined[index], semantic[index], lexical[index], candidates, passages)
            score = float(combined[index].max()) if combined.shape[1] else 0.0
            if sentence.abstention:
                kind, supported = "abstention", True
                after_abstention = True
            else:
                supported = score >= self.min_score
                kind = "generic" if not supported and (after_abstention or sentence.hedged) else "claim"
            closest = None
            if not supported and combined.shape[1]:
                closest = self._evidence_at(int(np.argmax(combined[index])), combined[index], semantic[index],
                                            lexical[index], candidates, passages)
            sentences.append(SentenceSupport(
                index=index, text=sentence.text, start=sentence.start, end=sentence.end, supported=supported,
                kind=kind, score=round(score, 4), evidence=evidence, closest=closest,
            ))
        thresholds = SupportThresholds(min_score=self.min_score, semantic_weight=self.semantic_weight,
                                       max_evidence=self.max_evidence, lexical_prefilter=self.lexical_prefilter)
        return {"support": SupportMap(sentences=sentences, thresholds=thresholds, model=self.model)}

    def _evidence(
        self, combined: np.ndarray, semantic: np.ndarray, lexical: np.ndarray, candidates: list[PassageSentence],
        passages: list[str],
    ) -> list[SupportEvidence]:
        evidence: list[SupportEvidence] = []
        seen: set[str] = set()
        for column in np.argsort(-combined, kind="stable"):
            if combined[column] < self.min_score or len(evidence) == self.max_evidence:
                break
            candidate = candidates[column]
            if candidate.clean in seen:  # overlapping chunks repeat sentences
                continue
            seen.add(candidate.clean)
            evidence.append(self._evidence_at(column, combined, semantic, lexical, candidates, passages))
        return evidence

    @staticmethod
    def _evidence_at(column: int, combined: np.ndarray, semantic: np.ndarray, lexical: np.ndarray,
                     candidates: list[PassageSentence], passages: list[str]) -> SupportEvidence:
        """Passage sentence `column` as evidence for one answer sentence (its row of the score matrices)."""
        candidate = candidates[column]
        return SupportEvidence(
            passage=candidate.passage, start=candidate.start, end=candidate.end,
            text=passages[candidate.passage][candidate.start : candidate.end],
            score=round(float(combined[column]), 4), semantic=round(float(semantic[column]), 4),
            lexical=round(float(lexical[column]), 4),
        )
