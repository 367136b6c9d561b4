from haystack import Document

from components.sentence_chunker import SentenceChunker
from components.sentences import sentence_spans, split_sentences, word_count


def test_sentences_respect_abbreviations_and_breaks():
    text = (
        "Models were trained in PyTorch (Paszke et al. 2019). Fig. 2 shows e.g. the loss. Was it stable? Yes!\n\n"
        "## Data\nImages came from J. Smith.\fPage two begins."
    )
    assert split_sentences(text) == [
        "Models were trained in PyTorch (Paszke et al. 2019).",
        "Fig. 2 shows e.g. the loss.",
        "Was it stable?",
        "Yes!",
        "## Data\nImages came from J. Smith.",
        "Page two begins.",
    ]
    for start, end in sentence_spans(text):
        assert text[start:end] == text[start:end].strip()


def test_citation_markers_stay_with_their_sentence():
    text = "Seeds were fixed. [1] Results came from one run. [2][3] Values in [0, 1] were kept. [4]"
    assert split_sentences(text) == [
        "Seeds were fixed. [1]", "Results came from one run. [2][3]", "Values in [0, 1] were kept. [4]"
    ]


def test_chunks_are_exact_slices_with_overlap_and_pages():
    sentences = [f"Sentence {i} talks about topic {i}." for i in range(30)]  # 6 words each
    text = " ".join(sentences[:15]) + "\f" + " ".join(sentences[15:])
    chunks = SentenceChunker(chunk_words=20, overlap_words=6).run([Document(content=text, meta={"doc_id": "p"})])[
        "documents"
    ]
    assert len(chunks) > 5
    for index, chunk in enumerate(chunks):
        assert chunk.id == f"p#{index}"
        assert chunk.meta["chunk_index"] == index
        assert text[chunk.meta["char_start"] : chunk.meta["char_end"]] == chunk.content
        assert word_count(chunk.content) <= 20
        assert chunk.content.endswith(".")  # whole sentences only
        expected_page = 1 if chunk.meta["char_start"] < text.index("\f") else 2
        assert chunk.meta["page"] == expected_page
    # each chunk repeats the last sentence of the one before
    assert chunks[1].content.startswith(split_sentences(chunks[0].content)[-1])
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.meta["char_start"], chunk.meta["char_end"]))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_overlong_sentence_is_cut_at_words():
    text = " ".join(f"w{i}" for i in range(50))
    chunks = SentenceChunker(chunk_words=20, overlap_words=0).run([Document(content=text, meta={"doc_id": "x"})])[
        "documents"
    ]
    assert [word_count(c.content) for c in chunks] == [20, 20, 10]


def test_invalid_lengths_rejected():
    import pytest

    with pytest.raises(ValueError, match="overlap_words < chunk_words"):
        SentenceChunker(chunk_words=10, overlap_words=10)
