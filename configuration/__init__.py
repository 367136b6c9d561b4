"""Configuration, the ground floor: settings and where model weights come from. Imports nothing of the project.

Offline first: importing this package switches Haystack's anonymous telemetry off (it would try to reach the
network on every pipeline run) unless HAYSTACK_TELEMETRY_ENABLED is set. Haystack reads that variable once, when it
is first imported, so every entry point (app.py, cli.py, the tests' conftest, bench scripts) imports its settings
from here before anything imports Haystack. This is the only place that sets it.
"""

import os

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
