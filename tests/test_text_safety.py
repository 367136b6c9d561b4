"""Untrusted text reaches the page only through ui.text_safety: escaped Markdown (md, escape_markdown) for
Streamlit's text elements and labels, escaped HTML for st.html; bidi and zero-width characters are shown."""

from __future__ import annotations

import ast
import re

import pytest

from tests.conftest import REPO
from ui.highlight import answer_html, passage_html
from ui.text_safety import WORD_JOINER, escape_markdown, md, visible_html

# Streamlit calls whose text (first argument, or these keywords) is read as Markdown.
MARKDOWN_CALLS = {"markdown", "caption", "error", "success", "warning", "info", "toast", "title", "header", "subheader",
                  "button", "download_button", "form_submit_button", "expander", "progress", "write", "popover",
                  "link_button", "page_link", "checkbox", "toggle", "radio", "metric", "tabs", "status", "spinner"}
TEXT_KEYWORDS = {"body", "label", "text"}
SAFE_CALLS = {"md", "md_joined", "escape_markdown"}
UI_FILES = [REPO / "app.py", *sorted((REPO / "ui").glob("*.py")), *sorted((REPO / "app_pages").glob("*.py"))]


def _safe(node: ast.expr) -> bool:
    """A literal, or text made safe by md()/escape_markdown(); both branches of a conditional."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.IfExp):
        return _safe(node.body) and _safe(node.orelse)
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
        return name in SAFE_CALLS
    return False


def _is_logger(func: ast.expr) -> bool:
    """log.error(...), logging.getLogger(...).warning(...): the terminal's log, not the page."""
    receiver = getattr(func, "value", None)
    if isinstance(receiver, ast.Call):
        receiver = receiver.func
    return ast.unparse(receiver).split(".")[-1] in {"log", "logger", "logging", "getLogger"} if receiver else False


def _markdown_texts(tree: ast.AST):
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        names = [f.attr for f in (func.body, func.orelse) if isinstance(f, ast.Attribute)] if isinstance(func, ast.IfExp) \
            else [func.attr] if isinstance(func, ast.Attribute) else []
        if not any(name in MARKDOWN_CALLS for name in names) or _is_logger(func):
            continue
        if node.args and "progress" not in names:
            yield node, node.args[0]
        for keyword in node.keywords:
            if keyword.arg in TEXT_KEYWORDS:
                yield node, keyword.value


def test_every_markdown_text_in_the_ui_is_a_literal_or_escaped():
    unsafe = []
    for path in UI_FILES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for call, text in _markdown_texts(tree):
            if not _safe(text):
                unsafe.append(f"{path.relative_to(REPO)}:{call.lineno}: {ast.unparse(text)[:90]}")
    assert unsafe == [], "\n".join(unsafe)


@pytest.mark.parametrize("text", ["see https://evil.example/x.png now", "HTTP://evil.example", "www.evil.example/x",
                                  "mail me: a.b@evil.example", "(https://evil.example)"])
def test_bare_autolinks_are_broken(text):
    escaped = escape_markdown(text)
    resolved = escaped.replace("\\", "")  # what GitHub's autolink pass sees once escapes are resolved
    assert "://" not in resolved and "www." not in resolved.lower() and "b@" not in resolved
    assert resolved.replace(WORD_JOINER, "") == text, "nothing but invisible word joiners is added"


def test_markdown_and_html_show_literally():
    escaped = escape_markdown("![x](https://evil.example/x.png) <img src=x onerror=alert(1)> [a](javascript:alert(1))")
    assert re.search(r"(?<!\\)[!\[\]()<>]", escaped) is None, "every bracket, bang and angle is escaped"
    assert md("**{}** · {}", "*bold*", "`code`") == "**\\*bold\\*** · \\`code\\`"


def test_bidi_and_zero_width_characters_are_shown():
    assert escape_markdown("evil\u202egnp.exe") == "evil⟨U\\+202E⟩gnp\\.exe"
    shown = visible_html("a\u200bb\u2066c\u2069\ufeff<b>")
    assert shown.count('class="loupe-control"') == 4 and "⟨U+200B⟩" in shown and "⟨U+FEFF⟩" in shown
    assert "\u200b" not in shown and "\u2066" not in shown and "&lt;b&gt;" in shown


def test_highlight_offsets_still_point_at_the_stored_text():
    text = "Seeds\u202e were fixed. The GPU\u200b was an A100."
    start = text.index("The GPU")
    html = passage_html(text, "GPU", [(start, len(text), [1])])
    supported = html.split('<span class="loupe-support"', 1)[1]
    assert "Seeds" not in supported and "⟨U+202E⟩" in html.split('<span class="loupe-support"', 1)[0]
    assert "⟨U+200B⟩" in supported and '<mark class="loupe-term">GPU</mark>' in supported
    answer = "One\u2067 two. Three."
    support = {"sentences": [{"index": 0, "start": 0, "end": 9, "supported": False},
                             {"index": 1, "start": 10, "end": 16, "supported": False}]}
    marked = answer_html(answer, support)
    first = marked.split('data-sentence="2"')[0]
    assert "⟨U+2067⟩" in first and "Three" not in first


def test_long_tokens_wrap_inside_their_box():
    from ui.highlight import STYLE

    assert "overflow-wrap:anywhere" in STYLE.split(".loupe-passage{", 1)[1].split("}", 1)[0]
