"""Alembic migrations of the database, run by ``openflr.store.migrate`` (no alembic.ini needed)."""
