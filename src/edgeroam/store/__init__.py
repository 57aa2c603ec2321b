"""Durable state: SQLAlchemy 2 over a SQLite file (default) or PostgreSQL (by URL)."""

from edgeroam.store.database import Store, StoreError, default_url

__all__ = ["Store", "StoreError", "default_url"]
