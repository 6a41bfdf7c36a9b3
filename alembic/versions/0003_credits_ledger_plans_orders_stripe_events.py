"""credits ledger plans orders stripe events

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 15:22:06.726357
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The packs and plans a new installation starts with (credits in units of 1/100 credit, prices in cents).
DEFAULT_PLANS = [
    ("pack_10", "pack", "10 credits", 1_000, 490, 10),
    ("pack_50", "pack", "50 credits", 5_000, 1990, 20),
    ("pack_200", "pack", "200 credits", 20_000, 5900, 30),
    ("monthly_100", "subscription", "Monthly 100", 10_000, 990, 40),
    ("monthly_500", "subscription", "Monthly 500", 50_000, 3900, 50),
]


def upgrade() -> None:
    plan = op.create_table('plan',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('credits_units', sa.BigInteger(), nullable=False),
    sa.Column('price_cents', sa.Integer(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('stripe_price_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plan')),
    sa.UniqueConstraint('code', name=op.f('uq_plan_code'))
    )
    op.create_table('credit_account',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('balance_units', sa.BigInteger(), nullable=False),
    sa.Column('stripe_customer_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('subscription_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('subscription_plan_id', sa.Uuid(), nullable=True),
    sa.Column('subscription_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['subscription_plan_id'], ['plan.id'], name=op.f('fk_credit_account_subscription_plan_id_plan')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_credit_account_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_credit_account')),
    sa.UniqueConstraint('stripe_customer_id', name=op.f('uq_credit_account_stripe_customer_id'))
    )
    op.create_table('credit_order',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('plan_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('credits_units', sa.BigInteger(), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('refunded_cents', sa.Integer(), nullable=False),
    sa.Column('reversed_units', sa.BigInteger(), nullable=False),
    sa.Column('refund_shortfall_units', sa.BigInteger(), nullable=False),
    sa.Column('checkout_session_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('payment_intent_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('subscription_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('invoice_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('receipt_url', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('refunded_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['plan_id'], ['plan.id'], name=op.f('fk_credit_order_plan_id_plan')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_credit_order_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_order')),
    sa.UniqueConstraint('checkout_session_id', name=op.f('uq_credit_order_checkout_session_id')),
    sa.UniqueConstraint('invoice_id', name=op.f('uq_credit_order_invoice_id'))
    )
    with op.batch_alter_table('credit_order', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_order_payment_intent_id'), ['payment_intent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_order_user_id'), ['user_id'], unique=False)

    op.create_table('ledger_entry',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('amount_units', sa.BigInteger(), nullable=False),
    sa.Column('balance_after_units', sa.BigInteger(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_ledger_entry_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entry')),
    sa.UniqueConstraint('kind', 'reference', name=op.f('uq_ledger_entry_kind'))
    )
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_entry_user_created', ['user_id', 'created_at'], unique=False)

    op.create_table('credit_lot',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('entry_id', sa.Uuid(), nullable=False),
    sa.Column('order_id', sa.Uuid(), nullable=True),
    sa.Column('subscription_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('units', sa.BigInteger(), nullable=False),
    sa.Column('remaining_units', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['ledger_entry.id'], name=op.f('fk_credit_lot_entry_id_ledger_entry')),
    sa.ForeignKeyConstraint(['order_id'], ['credit_order.id'], name=op.f('fk_credit_lot_order_id_credit_order')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_credit_lot_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_lot'))
    )
    with op.batch_alter_table('credit_lot', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_lot_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_lot_user_id'), ['user_id'], unique=False)

    op.create_table('stripe_event',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('order_id', sa.Uuid(), nullable=True),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['credit_order.id'], name=op.f('fk_stripe_event_order_id_credit_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stripe_event'))
    )
    with op.batch_alter_table('stripe_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stripe_event_order_id'), ['order_id'], unique=False)

    op.bulk_insert(plan, [
        {"id": uuid.uuid5(uuid.NAMESPACE_URL, f"clearbg:plan:{code}"), "code": code, "kind": kind, "name": name,
         "credits_units": units, "price_cents": cents, "currency": "eur", "stripe_price_id": None,
         "active": True, "sort_order": order}
        for code, kind, name, units, cents, order in DEFAULT_PLANS
    ])


def downgrade() -> None:
    with op.batch_alter_table('stripe_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stripe_event_order_id'))

    op.drop_table('stripe_event')
    with op.batch_alter_table('credit_lot', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_lot_user_id'))
        batch_op.drop_index(batch_op.f('ix_credit_lot_order_id'))

    op.drop_table('credit_lot')
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_entry_user_created')

    op.drop_table('ledger_entry')
    with op.batch_alter_table('credit_order', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_order_user_id'))
        batch_op.drop_index(batch_op.f('ix_credit_order_payment_intent_id'))

    op.drop_table('credit_order')
    op.drop_table('credit_account')
    op.drop_table('plan')
