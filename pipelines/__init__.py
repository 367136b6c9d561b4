"""Factories for Loupe's Haystack pipelines."""
