"""The teams channel's own table: its delivery ledger."""

from sqlalchemy import MetaData

from services.common.ledger import ledger_table, parked_table
from services.common.migrations import Migrations

metadata = MetaData()
MIGRATIONS = Migrations.beside(__file__, "teams", metadata)
LEDGER = ledger_table(metadata, "teams_ledger")
PARKED = parked_table(metadata, "teams_parked_commands")
