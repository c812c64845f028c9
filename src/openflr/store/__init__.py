"""Durable state: SQLAlchemy tables and the database handle (SQLite by default, PostgreSQL-ready)."""
