"""Factories for Loupe's Haystack pipelines."""

import loupe  # noqa: F401  (switches off telemetry before Haystack is imported)
