"""money integrity: request proposals, attendance intervals, earnings hold, problem reports

A mentor's accept becomes a proposal the learner confirms before any charge
(requests.proposed_*); the SFU's join/leave events are kept per participant
(attendance_intervals) so attendance and no-shows follow what happened; a
booking's earnings wait out a hold (bookings.earnings_release_at) during which
the learner can report a problem (booking_reports). New enum values
(requests 'proposed', bookings 'no_show') need no DDL: enums are VARCHAR(20).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

import api.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attendance_intervals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("peer_id", sa.String(length=64), nullable=False),
        sa.Column("joined_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("left_at", api.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_attendance_intervals_session_id_sessions")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_attendance_intervals_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attendance_intervals")),
    )
    with op.batch_alter_table("attendance_intervals", schema=None) as batch_op:
        batch_op.create_index("ix_attendance_intervals_session_user", ["session_id", "user_id"], unique=False)

    op.create_table(
        "booking_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("learner_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("open", "refunded", "released", name="reportstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("resolution_note", sa.Text(), server_default="", nullable=False),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("resolved_at", api.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], name=op.f("fk_booking_reports_booking_id_bookings")),
        sa.ForeignKeyConstraint(["learner_id"], ["users.id"], name=op.f("fk_booking_reports_learner_id_users")),
        sa.ForeignKeyConstraint(["resolved_by_id"], ["users.id"], name=op.f("fk_booking_reports_resolved_by_id_users")),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], name=op.f("fk_booking_reports_session_id_sessions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_reports")),
        sa.UniqueConstraint("booking_id", name=op.f("uq_booking_reports_booking_id")),
    )
    with op.batch_alter_table("booking_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_booking_reports_learner_id"), ["learner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_booking_reports_session_id"), ["session_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_booking_reports_status"), ["status"], unique=False)

    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("settled_at", api.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("earnings_release_at", api.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("earnings_released_at", api.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_bookings_earnings_release_at"), ["earnings_release_at"], unique=False)

    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("proposed_price_cents", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("proposed_starts_at", api.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("proposed_title", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("proposal_expires_at", api.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("proposal_expires_at")
        batch_op.drop_column("proposed_title")
        batch_op.drop_column("proposed_starts_at")
        batch_op.drop_column("proposed_price_cents")

    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bookings_earnings_release_at"))
        batch_op.drop_column("earnings_released_at")
        batch_op.drop_column("earnings_release_at")
        batch_op.drop_column("settled_at")

    with op.batch_alter_table("booking_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_booking_reports_status"))
        batch_op.drop_index(batch_op.f("ix_booking_reports_session_id"))
        batch_op.drop_index(batch_op.f("ix_booking_reports_learner_id"))

    op.drop_table("booking_reports")
    with op.batch_alter_table("attendance_intervals", schema=None) as batch_op:
        batch_op.drop_index("ix_attendance_intervals_session_user")

    op.drop_table("attendance_intervals")
