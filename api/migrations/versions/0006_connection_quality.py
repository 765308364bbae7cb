"""sessions.connection_quality: seconds per connection quality level per participant

The SFU scores every participant's connection (excellent, good, poor, lost) while a
class runs and reports the time spent at each level when the room closes; the mentor's
analytics read it ("2 of 5 learners had a poor connection for 4 min").

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("connection_quality", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("connection_quality")
