"""credentials version: what signs sessions and API tokens out

API tokens carried the tail of the password hash so that a password change
revoked them, which put part of the hash in a readable payload. Sessions and
tokens now carry this number instead; a password change increments it, which
signs out every other session and revokes every token. Expand only: existing
rows start at 1, and the previous app ignores the column.

Revision ID: 7c1e5a9b2f40
Revises: d9efc08953fc
Create Date: 2026-11-30 03:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c1e5a9b2f40'
down_revision = 'd9efc08953fc'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('credentials_version', sa.Integer(), nullable=False, server_default='1'))


def downgrade():
    with op.batch_alter_table('users') as batch:
        batch.drop_column('credentials_version')
