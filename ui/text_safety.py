"""Make untrusted text (documents, model output) safe to show through Markdown or HTML."""

from __future__ import annotations

import html
import re

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~=&$])")


def escape_markdown(text: str) -> str:
    """Backslash-escape every character Markdown (and its inline HTML) could act on, so the text shows literally:
    no links, no images, no emphasis, no HTML. Line breaks are kept."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return escaped.replace("\n", "  \n")


def escape_html(text: str) -> str:
    """HTML-escape text, quotes included, for use inside generated HTML."""
    return html.escape(text, quote=True)
