"""How long jobs (ingest, import, analysis, evaluation) report progress: the caller draws the bar or line."""

from __future__ import annotations

from collections.abc import Callable

# (items done, items in all, the current item's name)
ProgressCallback = Callable[[int, int, str], None]
