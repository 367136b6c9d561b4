"""What the two SQLite retrievers share: checking their init parameters, from_dict, and the run-time top_k."""

from __future__ import annotations

from typing import Any

from haystack import default_from_dict
from haystack.document_stores.types import FilterPolicy

from document_stores.sqlite import SQLiteDocumentStore


def check_init_parameters(document_store: Any, top_k: int) -> None:
    """:raises TypeError: when the store is not a SQLiteDocumentStore. :raises ValueError: when top_k <= 0."""
    if not isinstance(document_store, SQLiteDocumentStore):
        raise TypeError("document_store must be an instance of SQLiteDocumentStore")
    if top_k <= 0:
        raise ValueError(f"top_k must be greater than 0, but got {top_k}")


def retriever_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """A retriever from its to_dict() data (the nested store included), leaving `data` as it was."""
    init_params = dict(data.get("init_parameters", {}))  # the caller's dict stays as it was
    data = {**data, "init_parameters": init_params}
    if "filter_policy" in init_params:
        init_params["filter_policy"] = FilterPolicy.from_str(init_params["filter_policy"])
    return default_from_dict(cls, data)


def resolve_top_k(top_k: int | None, default: int) -> int:
    """The run-time top_k, or the init one when None. :raises ValueError: when it is negative."""
    top_k = default if top_k is None else top_k
    if top_k < 0:
        raise ValueError(f"top_k must be greater than or equal to 0, but got {top_k}")
    return top_k
