"""bookings.booked_starts_at / booked_duration_min: the terms a learner paid for

A sold seat is a contract: the time and length the learner booked. The mentor may
still move or shorten the class, but a booking whose terms no longer match its
session is refundable in full on request and is refunded if the learner does not
come; the refund window is measured from the booked start (docs/money.md).
Existing bookings take their session's current terms.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from api.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bookings") as batch:
        batch.add_column(sa.Column("booked_starts_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("booked_duration_min", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE bookings SET booked_starts_at = (SELECT starts_at FROM sessions WHERE sessions.id = bookings.session_id),"
        " booked_duration_min = (SELECT duration_min FROM sessions WHERE sessions.id = bookings.session_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("bookings") as batch:
        batch.drop_column("booked_duration_min")
        batch.drop_column("booked_starts_at")
