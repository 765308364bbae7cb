"""conversations and direct messages, class materials, attendee replay of recordings

Learners and mentors talk between classes (one conversation per pair, each side's read
mark, block and last reminder e-mail on the row; reports for admins), mentors attach
files to a session, and a session says whether learners who attended may replay it
(existing 1:1s: yes, as new ones default to).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

import api.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UTC = api.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("low_user_id", sa.Integer(), nullable=False),
        sa.Column("high_user_id", sa.Integer(), nullable=False),
        sa.Column("low_read_id", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("high_read_id", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("low_blocked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("high_blocked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("low_emailed_at", UTC(timezone=True), nullable=True),
        sa.Column("high_emailed_at", UTC(timezone=True), nullable=True),
        sa.Column("last_message_id", sa.Integer(), nullable=True),
        sa.Column("last_message_at", UTC(timezone=True), nullable=True),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.CheckConstraint("low_user_id < high_user_id", name=op.f("ck_conversations_pair_ordered")),
        sa.ForeignKeyConstraint(["low_user_id"], ["users.id"], name=op.f("fk_conversations_low_user_id_users")),
        sa.ForeignKeyConstraint(["high_user_id"], ["users.id"], name=op.f("fk_conversations_high_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
        sa.UniqueConstraint("low_user_id", "high_user_id", name="uq_conversations_pair"),
    )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conversations_low_user_id"), ["low_user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_conversations_high_user_id"), ["high_user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_conversations_last_message_at"), ["last_message_at"], unique=False)

    op.create_table(
        "direct_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_direct_messages_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(["sender_id"], ["users.id"], name=op.f("fk_direct_messages_sender_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_direct_messages")),
    )
    with op.batch_alter_table("direct_messages", schema=None) as batch_op:
        batch_op.create_index("ix_direct_messages_conversation_id", ["conversation_id", "id"], unique=False)

    op.create_table(
        "conversation_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("reporter_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_reports_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(["reporter_id"], ["users.id"], name=op.f("fk_conversation_reports_reporter_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_reports")),
    )
    with op.batch_alter_table("conversation_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conversation_reports_conversation_id"), ["conversation_id"], unique=False)

    op.create_table(
        "session_materials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("mime", sa.String(length=80), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("stored_name", sa.String(length=80), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], name=op.f("fk_session_materials_session_id_sessions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_materials")),
    )
    with op.batch_alter_table("session_materials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_session_materials_session_id"), ["session_id"], unique=False)

    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attendee_replay", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("attendee_replay")
    with op.batch_alter_table("session_materials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_materials_session_id"))
    op.drop_table("session_materials")
    with op.batch_alter_table("conversation_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_reports_conversation_id"))
    op.drop_table("conversation_reports")
    with op.batch_alter_table("direct_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_direct_messages_conversation_id")
    op.drop_table("direct_messages")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversations_last_message_at"))
        batch_op.drop_index(batch_op.f("ix_conversations_high_user_id"))
        batch_op.drop_index(batch_op.f("ix_conversations_low_user_id"))
    op.drop_table("conversations")
