"""The teams channel's own table: its delivery ledger."""

from sqlalchemy import MetaData

from services.common.delivery import ledger_table

metadata = MetaData()
LEDGER = ledger_table(metadata, "teams_ledger")
