"""Training loops and evaluation metrics (never imported by the serving engine)."""
