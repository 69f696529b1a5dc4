"""typed go-live facts and phase

Revision ID: a41c7e2b9d10
Revises: dd4e13082f0e
Create Date: 2026-11-30 03:45:00.000000

Version 3 of the intranet command carries a go-live item's area, wave and state and a status update's phase
as typed fields; the pages read these columns. Items stored before are filled from the facts they were
labelled with for people (the last time those labels are read as data).
"""
import json
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'a41c7e2b9d10'
down_revision: Union[str, Sequence[str], None] = 'dd4e13082f0e'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

#: The Swedish labels version 2 wrote for go-live states (programs.labels.GOLIVE_STATUS, as it was then).
_STATES = {"Planerad": "planned", "Ny tidpunkt": "rescheduled", "Införandet har startat": "started",
           "Genomförd": "completed"}


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('intranet_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('area', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('wave', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('golive_state', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('phase', sa.String(length=200), nullable=True))
    items = sa.table('intranet_items', sa.column('event_id', sa.String), sa.column('event_type', sa.String),
                     sa.column('facts', sa.Text), sa.column('timeline_date', sa.Date), sa.column('area', sa.String),
                     sa.column('wave', sa.String), sa.column('golive_state', sa.String), sa.column('phase', sa.String))
    connection = op.get_bind()
    rows = connection.execute(sa.select(items.c.event_id, items.c.event_type, items.c.facts, items.c.timeline_date)
                              .where(items.c.event_type.in_(("golive.milestone", "status.update")))).all()
    for row in rows:
        facts = json.loads(row.facts)
        if row.event_type == "golive.milestone" and row.timeline_date is not None and "Område" in facts:
            values = {"area": facts["Område"], "wave": facts.get("Våg"),
                      "golive_state": _STATES.get(facts.get("Status", ""), "planned")}
        elif row.event_type == "status.update" and facts.get("Fas"):
            values = {"phase": facts["Fas"]}
        else:
            continue
        connection.execute(sa.update(items).where(items.c.event_id == row.event_id).values(**values))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('intranet_items', schema=None) as batch_op:
        batch_op.drop_column('phase')
        batch_op.drop_column('golive_state')
        batch_op.drop_column('wave')
        batch_op.drop_column('area')
