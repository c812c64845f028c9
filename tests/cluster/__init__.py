"""Several real ``openflr serve`` nodes sharing one PostgreSQL database behind HAProxy."""
