"""Loupe: review the answers of a RAG system against their sources.

Offline first: Haystack's anonymous telemetry is switched off before Haystack is imported (it would try to reach
the network on every pipeline run). Set HAYSTACK_TELEMETRY_ENABLED=True to opt back in.
"""

import os

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
