"""One settings object for the whole app, read from `loupe.toml` and then from environment variables.

Environment variables win over the file, the file wins over the defaults. Every default works offline.
See the README's "Configuration" table for the full list.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Short, for a 135M model: the passages first, then the question, one sentence to say when they lack the answer
# (the phrase loupe.support counts as an abstention), and the length asked for last, where a small model reads it
# just before answering (without it, it answers in numbered lists that drift). Measured against longer wordings
# and the instruction first in bench/generation.py (figures in bench/README.md).
# The numbered passages, as every prompt (and bench/generation.py's variants) lists them.
PASSAGES_BLOCK = """{% for passage in documents %}
[{{ loop.index }}] {{ passage.meta.get("title", "") }}{% if passage.meta.get("page") %} (page {{ passage.meta["page"] }}){% endif %}
{{ passage.content }}
{% endfor %}
"""
DEFAULT_PROMPT_TEMPLATE = ("""Answer the question using only these passages. Cite them by number, like [1].
If they do not contain the answer, say "The provided context does not contain this information."

"""
                           + PASSAGES_BLOCK + """Question: {{ question }}
Answer in one or two sentences, not a list:""")

# Decoding of local transformers models (and the defaults written into prepared GGUF folders, which
# `transformers serve` uses): greedy, which alone makes small models repeat themselves, with no 4-gram repeated.
# Chosen by scoring answers with the support map (bench/generation.py, figures in bench/README.md): against plain
# greedy, repetition penalties 1.1 and 1.2 (alone or with n-gram blocking) and the longer prompt, it had the most
# supported sentences and no false abstention. The answer ends at the model's end-of-turn token.
DECODING = {"do_sample": False, "no_repeat_ngram_size": 4}

BACKENDS = ("embedded", "elasticsearch")
GENERATOR_KINDS = ("transformers", "openai", "extractive")
RETRIEVAL_MODES = ("hybrid", "bm25", "dense")
AUTH_MODES = ("password", "off")  # unset: password when DATABASE_URL names a server, off for SQLite


class SettingsError(ValueError):
    """A setting has a value Loupe cannot use; the message names the setting and the accepted values."""


@dataclass(frozen=True)
class Settings:
    """Every knob of Loupe. Field names map to `LOUPE_<NAME>` environment variables (upper case)."""

    data_dir: Path = Path("data")
    backend: str = "embedded"
    elasticsearch_url: str = "http://localhost:9200"
    elasticsearch_index: str = "loupe"
    elasticsearch_username: str = ""
    # Secrets are never settings: ELASTICSEARCH_API_KEY, ELASTICSEARCH_PASSWORD and
    # LOUPE_GENERATOR_API_KEY (or OPENAI_API_KEY) are read from the environment when used.
    embedding_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    generator_kind: str = "transformers"
    # The bundled model (configuration.model_paths.BUNDLED_GENERATOR): any hub id, local folder or .gguf file works.
    generator_model: str = "HuggingFaceTB/SmolLM2-135M-Instruct"
    generator_base_url: str = ""
    # An answer of a few sentences, from the best-ranked passages: measured for the bundled model
    # (bench/generation.py --demo, figures in bench/README.md). The extractive answerer is given every passage.
    generator_max_new_tokens: int = 96
    generator_passages: int = 3
    # How long an OpenAI-compatible server may take to answer (each read of a streamed answer) before Loupe falls
    # back to the extractive answerer for that answer.
    generator_timeout_s: float = 60.0
    allow_downloads: bool = False
    # Where GGUF models (the bundled one included) are converted once into model folders; empty: the user's cache
    # folder, $XDG_CACHE_HOME/loupe/models or ~/.cache/loupe/models, shared by every data directory.
    model_cache_dir: str = ""
    top_k_bm25: int = 20
    top_k_dense: int = 20
    top_k: int = 5
    rrf_k: int = 60
    chunk_words: int = 150
    chunk_overlap_words: int = 30
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    extractive_min_similarity: float = 0.35
    auth: str = ""
    # Import from zip archives: the most one member may expand to, and all members of one archive together (MB).
    import_max_member_mb: int = 200
    import_max_archive_mb: int = 2000
    # The most seconds the background worker spends on one record's support analysis; a record over it is left to
    # on-demand analysis (review.analysis_worker), so that one record never stalls the others.
    analysis_time_limit_s: float = 20.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def store_path(self) -> Path:
        """Where the embedded document store keeps its documents: one SQLite database file."""
        return self.data_dir / "store" / "documents.sqlite3"

    def validate(self) -> Settings:
        """Raise SettingsError on the first value that cannot work."""
        _require_choice("backend", self.backend, BACKENDS)
        _require_choice("generator_kind", self.generator_kind, GENERATOR_KINDS)
        if self.auth:
            _require_choice("auth", self.auth, AUTH_MODES)
        for name in ("top_k_bm25", "top_k_dense", "top_k", "chunk_words", "rrf_k", "generator_max_new_tokens",
                     "generator_passages", "import_max_member_mb", "import_max_archive_mb"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.chunk_overlap_words < self.chunk_words:
            raise SettingsError(
                f"chunk_overlap_words must be at least 0 and smaller than chunk_words ({self.chunk_words}), "
                f"got {self.chunk_overlap_words}"
            )
        if not self.generator_timeout_s > 0:
            raise SettingsError(f"generator_timeout_s must be more than 0, got {self.generator_timeout_s}")
        if not self.analysis_time_limit_s > 0:
            raise SettingsError(f"analysis_time_limit_s must be more than 0, got {self.analysis_time_limit_s}")
        if self.generator_kind == "openai" and not self.generator_base_url:
            raise SettingsError("generator_kind 'openai' needs LOUPE_GENERATOR_BASE_URL (e.g. http://localhost:8000/v1)")
        return self

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed, validated."""
        return dataclasses.replace(self, **changes).validate()


def _require_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def _coerce(name: str, raw: Any, default: Any) -> Any:
    """Turn a raw string or TOML value into the type of the field's default."""
    try:
        if isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path):
            return Path(str(raw)).expanduser()
    except ValueError:
        raise SettingsError(f"{name} must be a {type(default).__name__}, got {raw!r}") from None
    return str(raw)


# Names that users know from the wider ecosystem are accepted besides the LOUPE_ ones.
_ALIASES = {"elasticsearch_url": "ELASTICSEARCH_URL"}


def load_settings(env: dict[str, str] | None = None, toml_path: Path | None = None) -> Settings:
    """Build Settings from `loupe.toml` (if present) and the environment, and validate them.

    :param env: the environment to read; `os.environ` when None.
    :param toml_path: the TOML file; `LOUPE_CONFIG` or `./loupe.toml` when None.
    :raises SettingsError: a value has the wrong type or is outside its accepted values.
    """
    env = dict(os.environ if env is None else env)
    toml_path = toml_path or Path(env.get("LOUPE_CONFIG", "loupe.toml"))
    values: dict[str, Any] = {}
    defaults = Settings()
    if toml_path.is_file():
        try:
            file_values = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise SettingsError(f"{toml_path} is not valid TOML: {error}") from None
        unknown = set(file_values) - {f.name for f in dataclasses.fields(Settings)}
        if unknown:
            raise SettingsError(f"{toml_path} has unknown settings: {', '.join(sorted(unknown))}")
        values.update(file_values)
    for item in dataclasses.fields(Settings):
        if item.name == "extra":
            continue
        for key in (f"LOUPE_{item.name.upper()}", _ALIASES.get(item.name)):
            if key and key in env:
                values[item.name] = env[key]
    typed = {name: _coerce(name, raw, getattr(defaults, name)) for name, raw in values.items()}
    return Settings(**typed).validate()
