"""Streamlit building blocks shared by pages (the review panel, highlighted passages)."""
