"""Adapters that put the live avatar into other frameworks' pipelines (optional extras)."""
