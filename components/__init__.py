"""Loupe's own Haystack components, one per module."""
