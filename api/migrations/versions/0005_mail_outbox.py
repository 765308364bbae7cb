"""mail outbox; room tokens remember the login session that asked for them

E-mail is queued in mail_outbox inside the request and delivered by a
background sender with retries (a mail failure can no longer fail a request
that already committed). room_tokens.access_jti links a room token to the
access token it was issued to, so logging out revokes it.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

import api.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("pending", "sent", "failed", name="mailstatus", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", api.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", api.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", api.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
    )
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_mail_outbox_due", ["status", "next_attempt_at"], unique=False)

    with op.batch_alter_table("room_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("access_jti", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_room_tokens_access_jti"), ["access_jti"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("room_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_room_tokens_access_jti"))
        batch_op.drop_column("access_jti")

    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_mail_outbox_due")

    op.drop_table("mail_outbox")
