"""The schema of the releases before migrations: users, audit, logon_failures.

Revision ID: 0001
Revises: (none)

On a database those releases made (their tables, no revision recorded) it creates the tables that
are missing and adds the columns that are missing, as their additive ``upgrade()`` did; on an empty
database it creates everything.
"""

from __future__ import annotations

from typing import cast

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def _tables(meta: sa.MetaData) -> list[sa.Table]:
    """The tables as this revision makes them (a copy: later model changes get their own revision)."""
    return [
        sa.Table(
            "users",
            meta,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String(256), nullable=False),
            sa.Column("name_key", sa.String(256), nullable=False, unique=True, index=True),
            sa.Column("password_hash", sa.Text, nullable=False),
            sa.Column("role", sa.String(64), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("inplace_only", sa.Boolean, nullable=False, server_default=sa.false()),
            sa.Column("allowed_extensions", sa.Text, nullable=False, server_default=sa.text("''")),
            sa.Column("restore_scope", sa.Text, nullable=False, server_default=sa.text("''")),
        ),
        sa.Table(
            "audit",
            meta,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
            sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("user", sa.String(256), nullable=False, index=True),
            sa.Column("client", sa.String(128), nullable=False),
            sa.Column("action", sa.String(32), nullable=False),
            sa.Column("vm", sa.String(512), nullable=False),
            sa.Column("point_id", sa.String(64), nullable=False),
            sa.Column("point_time", sa.DateTime(timezone=True), nullable=True),
            sa.Column("path", sa.Text, nullable=False),
            sa.Column("target", sa.Text, nullable=False),
            sa.Column("bytes", sa.BigInteger, nullable=False),
            sa.Column("items", sa.Integer, nullable=False),
            sa.Column("failed_items", sa.Integer, nullable=False),
            sa.Column("result", sa.String(32), nullable=False),
            sa.Column("message", sa.Text, nullable=False),
            sa.Column("task_id", sa.String(32), nullable=False),
        ),
        sa.Table(
            "logon_failures",
            meta,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("kind", sa.String(8), nullable=False),
            sa.Column("account", sa.String(256), nullable=False, index=True),
            sa.Column("address", sa.String(64), nullable=False, index=True),
            sa.Column("failures", sa.Integer, nullable=False),
            sa.Column("last_failure", sa.Float, nullable=False),
            sa.Column("locked_until", sa.Float, nullable=False),
            sa.UniqueConstraint("kind", "account", "address"),
        ),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    meta = sa.MetaData()
    tables = _tables(meta)
    present = set(sa.inspect(bind).get_table_names())
    meta.create_all(bind, tables=[t for t in tables if t.name not in present])
    for table in tables:
        if table.name not in present:
            continue
        have = {c["name"] for c in sa.inspect(bind).get_columns(table.name)}
        for column in table.columns:
            if column.name not in have:
                # Only the columns added after the first release can be missing: each has a default.
                arg = cast("str | sa.TextClause | None", getattr(column.server_default, "arg", None))
                op.add_column(
                    table.name,
                    sa.Column(
                        column.name,
                        column.type,
                        nullable=column.nullable,
                        server_default=arg,
                    ),
                )


def downgrade() -> None:
    for name in ("logon_failures", "audit", "users"):
        op.drop_table(name)
