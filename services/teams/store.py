"""The teams channel's own tables: its delivery ledger, and the posts to each webhook (for Microsoft's limits)."""

from sqlalchemy import MetaData

from services.common.ledger import ledger_table, parked_table
from services.common.migrations import Migrations
from services.teams.limits import posts_table

metadata = MetaData()
MIGRATIONS = Migrations.beside(__file__, "teams", metadata)
LEDGER = ledger_table(metadata, "teams_ledger")
PARKED = parked_table(metadata, "teams_parked_commands")
POSTS = posts_table(metadata)
