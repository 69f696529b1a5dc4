"""The email channel's own table: its delivery ledger."""

from sqlalchemy import MetaData

from services.common.ledger import ledger_table, parked_table
from services.common.migrations import Migrations

metadata = MetaData()
MIGRATIONS = Migrations.beside(__file__, "email", metadata)
LEDGER = ledger_table(metadata, "email_ledger")
PARKED = parked_table(metadata, "email_parked_commands")
