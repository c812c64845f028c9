"""Store-level tests here (users, throttle, audit) run on SQLite and PostgreSQL (tests/store/postgres.py)."""

from tests.store.postgres import database_url, postgres_url  # noqa: F401 (fixtures)
