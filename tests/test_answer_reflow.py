"""The answer reads as prose (issue 22, part 4): a model's line break inside a sentence shows as a space, a
numbered answer keeps its lines, and each sentence's highlight still covers the stored text's offsets; the stored
answer itself is not changed."""

from __future__ import annotations

import re

from ui.highlight import answer_html, answer_reflow_map

ANSWER = "It uses a pre-trained system for image\nrecognition. Seeds were fixed\n  for every run."


def sentence_texts(html: str) -> list[str]:
    """The text of each numbered answer sentence, without its number label."""
    spans = re.findall(r'<span class="loupe-sentence [^"]*"[^>]*><sup class="loupe-label">\d+</sup>(.*?)</span>', html)
    return spans


def support_of(answer: str, *sentences: str) -> dict:
    found = []
    for index, sentence in enumerate(sentences):
        start = answer.index(sentence)
        found.append({"index": index, "start": start, "end": start + len(sentence), "supported": True,
                      "kind": "claim", "evidence": [{"passage": 0, "start": 0, "end": 4}]})
    return {"sentences": found}


def test_line_breaks_inside_a_sentence_show_as_spaces_and_highlights_keep_their_sentences():
    support = support_of(ANSWER, "It uses a pre-trained system for image\nrecognition.",
                         "Seeds were fixed\n  for every run.")
    html = answer_html(ANSWER, support)
    assert sentence_texts(html) == ["It uses a pre-trained system for image recognition.",
                                    "Seeds were fixed for every run."]
    assert "\n" not in html


def test_an_answer_without_a_support_map_is_re_flowed_too():
    assert "system for image recognition." in answer_html(ANSWER, None)


def test_a_numbered_answer_keeps_its_lines():
    listed = "The augmentations were:\n1. random flips of the\nimages\n2. crops"
    shown = "".join(answer_reflow_map(listed))
    assert shown == "The augmentations were:\n1. random flips of the images\n2. crops"
    assert len(answer_reflow_map(listed)) == len(listed)  # one entry per stored character: offsets map as they are
