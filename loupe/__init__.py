"""Loupe: review the answers of a RAG system against their sources."""
