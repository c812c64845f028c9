"""State shared by the nodes of a cluster: logon sessions, mounts, tasks, nodes; the audit's node.

Revision ID: 0002
Revises: 0001

Sessions, mounts and tasks lived in each process's memory before; now any node serves any request
(docs/DEPLOYMENT.md, "Several nodes"). Every audit record names the node that ran it, so that a node
closes only its own records when it starts or when another finds it stopped.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def _tables(meta: sa.MetaData) -> list[sa.Table]:
    """The tables as this revision makes them (a copy: later model changes get their own revision)."""
    return [
        sa.Table(
            "nodes",
            meta,
            sa.Column("name", sa.String(128), primary_key=True),
            sa.Column("started_at", sa.Float, nullable=False),
            sa.Column("heartbeat_at", sa.Float, nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
        ),
        sa.Table(
            "logon_sessions",
            meta,
            sa.Column("id", sa.String(36), primary_key=True),
            sa.Column("token_hash", sa.String(64), nullable=False, unique=True, index=True),
            sa.Column("user_id", sa.Integer, nullable=False, index=True),
            sa.Column("user_json", sa.Text, nullable=False),
            sa.Column("client", sa.String(128), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("last_seen", sa.Float, nullable=False, index=True),
            sa.Column("csrf", sa.String(64), nullable=False),
            sa.Column("ended", sa.Boolean, nullable=False, index=True),
            sa.Column("end_reason", sa.String(64), nullable=False),
            sa.Column("node", sa.String(128), nullable=False),
        ),
        sa.Table(
            "mounts",
            meta,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("session_id", sa.String(36), nullable=False, index=True),
            sa.Column("point_id", sa.String(64), nullable=False),
            sa.Column("family", sa.String(16), nullable=False),
            sa.Column("created", sa.DateTime(timezone=True), nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("node", sa.String(128), nullable=False),
            sqlite_autoincrement=True,
        ),
        sa.Table(
            "tasks",
            meta,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("session_id", sa.String(36), nullable=False, index=True),
            sa.Column("kind", sa.String(64), nullable=False),
            sa.Column("state", sa.String(16), nullable=False, index=True),
            sa.Column("success", sa.Boolean, nullable=True),
            sa.Column("message", sa.Text, nullable=True),
            sa.Column("result_json", sa.Text, nullable=False),
            sa.Column("progress_json", sa.Text, nullable=False),
            sa.Column("created", sa.DateTime(timezone=True), nullable=False),
            sa.Column("finished", sa.DateTime(timezone=True), nullable=True),
            sa.Column("node", sa.String(128), nullable=False, index=True),
            sqlite_autoincrement=True,
        ),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    meta = sa.MetaData()
    meta.create_all(bind, tables=_tables(meta))
    op.add_column("audit", sa.Column("node", sa.String(128), nullable=False, server_default=sa.text("''")))
    op.create_index("ix_audit_node", "audit", ["node"])


def downgrade() -> None:
    op.drop_index("ix_audit_node", table_name="audit")
    op.drop_column("audit", "node")
    for name in ("tasks", "mounts", "logon_sessions", "nodes"):
        op.drop_table(name)
