"""The email channel's own table: its delivery ledger."""

from sqlalchemy import MetaData

from services.common.delivery import ledger_table

metadata = MetaData()
LEDGER = ledger_table(metadata, "email_ledger")
