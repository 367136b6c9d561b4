"""The one way untrusted text (documents, model output, ids, file names, error messages quoting them) reaches the
page: escaped for the Markdown of Streamlit's text elements and labels (`md`, `escape_markdown`), or escaped for
HTML (`escape_html`, `visible_html`). Pages never put untrusted text into Markdown or HTML any other way;
`tests/test_text_safety.py` checks that they do not.

Streamlit renders Markdown with GitHub's extensions, which turn bare `https://…`, `www.…` and e-mail addresses
into links after escapes are resolved, so backslashes alone do not stop them: a WORD JOINER (U+2060, invisible,
no line break) is put inside the `://`, after `www` and before `@`, where the autolink patterns need their text
to run on unbroken.
"""

from __future__ import annotations

import html
import re
import unicodedata

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~=&$])")
WORD_JOINER = "\u2060"
# Where GitHub-flavoured Markdown's autolink literals start: a scheme's "://", "www." and an e-mail's "@".
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=[wW][wW][wW])(?=\\\.)|(?=@)")
# Shown as a badge rather than acting invisibly: bidirectional overrides and isolates, zero-width characters.
INVISIBLE_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200c\u200d\u2060\ufeff")
_INVISIBLE = re.compile("[" + "".join(sorted(INVISIBLE_CONTROLS)) + "]")


def escape_markdown(text: object) -> str:
    """Text that shows literally wherever Streamlit reads Markdown (st.markdown, captions, alerts, widget labels,
    progress texts): every character Markdown or its inline HTML could act on is backslash-escaped, autolinks
    are broken (see the module docstring) and bidi or zero-width characters are shown as ⟨U+…⟩. Line breaks are
    kept."""
    text = "" if text is None else str(text)
    text = _INVISIBLE.sub(lambda match: f"⟨U+{ord(match.group(0)):04X}⟩", text)
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    escaped = _AUTOLINK.sub(WORD_JOINER, escaped)
    return escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "  \n")


def md(template: str, *values: object, **named: object) -> str:
    """Trusted Markdown `template` (str.format syntax) with every value escaped by `escape_markdown`:
    `st.caption(md("Generator: **{}** · {}", kind, model))`."""
    return template.format(*(escape_markdown(value) for value in values),
                           **{name: escape_markdown(value) for name, value in named.items()})


def md_joined(*parts: object, separator: str = " · ") -> str:
    """The non-empty parts, each escaped, joined by a (trusted) separator."""
    return separator.join(escape_markdown(part) for part in parts if part)


def escape_html(text: str) -> str:
    """HTML-escape text, quotes included, for use inside generated HTML."""
    return html.escape(text, quote=True)


def control_badge(character: str) -> str:
    """The visible mark of one bidi or zero-width character (HTML)."""
    name = unicodedata.name(character, "")
    return (f'<span class="loupe-control" title="{escape_html(name.title() or "invisible character")}">'
            f"⟨U+{ord(character):04X}⟩</span>")


def visible_html(text: str) -> str:
    """HTML-escaped text in which bidi overrides and zero-width characters show as badges instead of acting:
    the text's own characters are all kept, in order (a highlight span over the stored text stays right)."""
    parts, last = [], 0
    for match in _INVISIBLE.finditer(text):
        parts.append(escape_html(text[last : match.start()]))
        parts.append(control_badge(match.group(0)))
        last = match.end()
    parts.append(escape_html(text[last:]))
    return "".join(parts)
