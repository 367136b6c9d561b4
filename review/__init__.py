"""The review database: records (what was asked and answered) and annotations (what reviewers decided)."""

import loupe  # noqa: F401  (switches off telemetry before Haystack is imported)
