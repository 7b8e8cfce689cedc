"""Mail exactly once: the delivery ledger records the intent before the SMTP transaction.

``reporting.deliveries.state``:

- ``sending``: the intent, committed before the relay is contacted. A row left in
  this state (a crash, or the warehouse lost, between the relay's "250" and the
  update) means "may or may not have gone": the next attempt reconciles it by
  sending the archived message again, byte for byte, under the same Message-ID, and
  marks it ``sent`` with ``reconciled``;
- ``sent``: the relay accepted it (``sent_at``, ``relay_response``); never sent again;
- ``failed``: the relay refused or could not be reached after the retries
  (``last_error``): the period is owed and the next run that can sends it;
- ``superseded``: an unsent version replaced by a newer version of the same period
  and recipient (the figures changed before it could go out).

Rows of earlier releases were written after the relay accepted: they are ``sent``.

Revision ID: 0003_delivery_intent
Revises: 0002_landing_hygiene
"""

from __future__ import annotations

from alembic import op

revision = "0003_delivery_intent"
down_revision = "0002_landing_hygiene"
branch_labels = None
depends_on = None

DDL = """
alter table reporting.deliveries
    add column state text not null default 'sent' check (state in ('sending', 'sent', 'failed', 'superseded')),
    add column intent_at timestamptz,
    add column attempts integer not null default 1,
    add column relay_response text,
    add column last_error text,
    add column reconciled boolean not null default false,
    alter column sent_at drop not null;
-- sent_at is when the relay accepted the message: set exactly when the row is sent.
alter table reporting.deliveries add constraint deliveries_sent_at_when_sent
    check ((state = 'sent') = (sent_at is not null));
create index deliveries_unsent on reporting.deliveries (report_id, period) where state in ('sending', 'failed');
comment on table reporting.deliveries is 'Delivery ledger: a report, period, recipient and content version is sent once. The intent (state sending) is committed before the SMTP transaction; sent after the relay accepted; failed = owed, sent by the next run that can; superseded = an unsent version replaced by a newer one.';
comment on column reporting.deliveries.reconciled is 'Sent by reconciling a row left in state sending (a crash after the relay may have accepted it): the message went again under the same Message-ID, so the recipient''s mail system can collapse a duplicate.';
"""


def upgrade() -> None:
    conn = op.get_bind().connection.driver_connection
    conn.execute(DDL)
    # The reporter now updates its ledger rows (sending -> sent / failed / superseded).
    if conn.execute("select 1 from pg_roles where rolname = 'healthops_reporter'").fetchone():
        conn.execute("grant update on reporting.deliveries to healthops_reporter")


def downgrade() -> None:
    # Going back would lose which periods are owed and which sends were reconciled.
    raise NotImplementedError("0003_delivery_intent keeps the delivery ledger's states and is not reversible")
