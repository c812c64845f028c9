"""Cluster tests run on a throw-away PostgreSQL cluster (tests/store/postgres.py)."""

from tests.store.postgres import postgres_url  # noqa: F401 (fixture)
