"""case-insensitive unique usernames

The app refuses a name that differs from a taken one only in case, but two
sign-ups racing each other both passed that check: the unique index on
`username` compares case-sensitively. A unique index on lower(username)
(SQLite and Postgres) makes the database refuse the second one. Expand only:
the old index stays, and the previous app keeps working (an IntegrityError it
already handles as "taken").

Revision ID: d9efc08953fc
Revises: 4ee59d211867
Create Date: 2026-11-30 01:42:51.501985

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd9efc08953fc'
down_revision = '4ee59d211867'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('uq_users_lower_username', 'users', [sa.text('lower(username)')], unique=True)


def downgrade():
    op.drop_index('uq_users_lower_username', table_name='users')
