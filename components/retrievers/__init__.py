"""Retrievers of Loupe's own document stores, one package per store (as haystack-core-integrations lays them out)."""
