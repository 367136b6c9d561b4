"""Loupe's core services, free of UI and of the review database: ask, ingest, generators, support analysis,
retrieval evaluation, and the factory of the configured document store."""
