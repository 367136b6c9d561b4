"""Loupe's own Haystack components, one per module."""

import loupe  # noqa: F401  (switches off telemetry before Haystack is imported)
