"""Alembic environment of this service's tables (see services/common/migrations.py)."""

from services.common.migrations import run_env

run_env()
