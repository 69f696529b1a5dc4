"""The console's own table: sessions ended by sign-out, as announced (see services/common/ended_sessions)."""

from sqlalchemy import MetaData

from services.common.ended_sessions import ended_sessions_table
from services.common.migrations import Migrations

metadata = MetaData()
MIGRATIONS = Migrations.beside(__file__, "console", metadata)
ENDED_SESSIONS = ended_sessions_table(metadata, "console_ended_sessions")
