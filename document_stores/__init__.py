"""Loupe's own Haystack document stores."""
