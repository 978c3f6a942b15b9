"""Persistence: SQLAlchemy models, the engine, and small repository functions."""
