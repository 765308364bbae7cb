"""scheduling: mentors' weekly availability rules and personal calendar feeds

mentor_availability holds one row of booking rules per mentor (wall-clock ranges in
the mentor's IANA zone, slot length, price, buffer, notice, horizon, days off); free
slots are computed from it and the mentor's sessions, never stored. calendar_feeds
holds each user's secret .ics address; sessions.sequence is a class's iCalendar SEQUENCE
(bumped when it moves or is cancelled, so subscribed calendars take the change).

Revision ID: 0008
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

import api.models

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("sequence", sa.Integer(), nullable=False, server_default=sa.text("0")))
    op.create_table(
        "mentor_availability",
        sa.Column("mentor_id", sa.Integer(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("weekly", sa.JSON(), nullable=False),
        sa.Column("slot_minutes", sa.Integer(), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("buffer_minutes", sa.Integer(), nullable=False),
        sa.Column("min_notice_hours", sa.Integer(), nullable=False),
        sa.Column("max_days_ahead", sa.Integer(), nullable=False),
        sa.Column("days_off", sa.JSON(), nullable=False),
        sa.Column("updated_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("slot_minutes > 0", name=op.f("ck_mentor_availability_slot_positive")),
        sa.CheckConstraint("price_cents >= 0", name=op.f("ck_mentor_availability_price_non_negative")),
        sa.ForeignKeyConstraint(["mentor_id"], ["users.id"], name=op.f("fk_mentor_availability_mentor_id_users")),
        sa.PrimaryKeyConstraint("mentor_id", name=op.f("pk_mentor_availability")),
    )
    op.create_table(
        "calendar_feeds",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("created_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_calendar_feeds_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_calendar_feeds")),
        sa.UniqueConstraint("secret", name=op.f("uq_calendar_feeds_secret")),
    )


def downgrade() -> None:
    op.drop_table("calendar_feeds")
    op.drop_table("mentor_availability")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("sequence")
