"""scheduling: mentors' weekly availability rules and personal calendar feeds

mentor_availability holds one row of booking rules per mentor (wall-clock ranges in
the mentor's IANA zone, slot length, price, buffer, notice, horizon, days off); free
slots are computed from it and the mentor's sessions, never stored. calendar_feeds
holds each user's secret .ics address; sessions.sequence is a class's iCalendar SEQUENCE
(bumped when it moves or is cancelled, so subscribed calendars take the change);
reschedule_proposals holds one side's ask to move a booked 1:1 until the other answers.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

import api.models

revision = "0008"
down_revision = "0007"
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

    op.create_table(
        "reschedule_proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("proposed_by_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("previous_starts_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending", "accepted", "declined", "withdrawn", name="reschedulestatus", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("created_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", api.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_reschedule_proposals_session_id_sessions")
        ),
        sa.ForeignKeyConstraint(
            ["proposed_by_id"], ["users.id"], name=op.f("fk_reschedule_proposals_proposed_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reschedule_proposals")),
    )
    with op.batch_alter_table("reschedule_proposals") as batch:
        batch.create_index(batch.f("ix_reschedule_proposals_session_id"), ["session_id"], unique=False)
        batch.create_index(
            "uq_reschedule_proposals_pending_session",
            ["session_id"],
            unique=True,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )


def downgrade() -> None:
    op.drop_table("reschedule_proposals")
    op.drop_table("calendar_feeds")
    op.drop_table("mentor_availability")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("sequence")
