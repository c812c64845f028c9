"""Store tests run on SQLite and on a throw-away PostgreSQL cluster (tests/store/postgres.py)."""

from tests.store.postgres import database_url, postgres_url  # noqa: F401 (fixtures)
