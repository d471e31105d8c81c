"""Durable instances: SQLite (embedded default) or PostgreSQL, picked by URL."""

from .core import Receipt, Store, StoredInstance

__all__ = ["Store", "StoredInstance", "Receipt"]
