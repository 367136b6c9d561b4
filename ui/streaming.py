"""Stream a generator's answer into the page while the work runs in a thread (Streamlit draws from the script's
own thread only, so the worker hands chunks over a queue). When the script stops while it streams (a Cancel
button, another click, leaving the page), the generator stops at its next token (loupe.generators.cancellable)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from loupe.generators import cancellable
from ui.text_safety import md

Result = TypeVar("Result")


def stream_into_page(work: Callable[[Callable[[Any], None], Callable[[str], None]], Result]) -> Result:
    """Run `work(streaming_callback, on_fallback)` in a worker thread, drawing each streamed chunk as it comes and
    announcing a fallback to the extractive answerer; returns what `work` returned.

    :raises Exception: whatever `work` raised, re-raised here for the page to show (never as a traceback);
        `loupe.generators.GenerationCancelled` when the script stopped while it streamed."""
    chunks: queue.Queue = queue.Queue()
    outcome: dict[str, Any] = {}
    cancel = threading.Event()

    def run() -> None:
        try:
            outcome["result"] = work(cancellable(lambda chunk: chunks.put(chunk.content), cancel),
                                     lambda reason: chunks.put(("fallback", reason)))
        except Exception as error:  # handed to the script's thread below
            outcome["error"] = error
        finally:
            chunks.put(None)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    placeholder, text = st.empty(), ""
    try:
        while (item := chunks.get()) is not None:
            if isinstance(item, tuple):
                st.warning(md("The extractive answerer answered instead: {}", item[1]))  # the reason says why
                text = ""
                continue
            text += item
            placeholder.markdown(md("{} ▌", text))
    finally:
        cancel.set()  # a stopped script (Cancel, another click) stops the generator too; after the end, nothing
    worker.join()
    placeholder.empty()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
