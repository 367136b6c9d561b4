"""The review database: records (what was asked and answered) and annotations (what reviewers decided), and
the jobs that fill it (import, batch runs, support analysis)."""
