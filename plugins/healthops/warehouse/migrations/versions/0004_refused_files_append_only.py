"""audit.refused_files is append-only, like the rest of the audit schema.

The loader only inserts into it (``on conflict do nothing`` when a night is run
again), and an auditor relies on it to know what a landing folder held that was never
read: an update, delete or truncate is refused for every role, owner included, with the
same error as the chained audit tables (``audit.refuse_change`` of the baseline, which
also lets the baseline seal rows written before the chain: it reads ``chain_seq``, a
column this table does not have, so it gets a function of its own). It is not hash-chained: its rows are facts about the landing folder, not
evidence of a validation, and each is bound to its night by (source, received_date,
file_path).

Revision ID: 0004_refused_files_append_only
Revises: 0003_delivery_intent
"""

from __future__ import annotations

from alembic import op

revision = "0004_refused_files_append_only"
down_revision = "0003_delivery_intent"
branch_labels = None
depends_on = None

DDL = """
create function audit.refuse_any_change() returns trigger language plpgsql as $fn$
begin
    raise exception 'audit.% is append-only: % refused', tg_table_name, tg_op
        using errcode = 'insufficient_privilege',
              hint = 'audit history is kept as written';
end $fn$;
create trigger refused_files_append_only before update or delete on audit.refused_files
    for each row execute function audit.refuse_any_change();
create trigger refused_files_no_truncate before truncate on audit.refused_files
    for each statement execute function audit.refuse_any_change();
"""


def upgrade() -> None:
    op.get_bind().connection.driver_connection.execute(DDL)


def downgrade() -> None:
    # Dropping the triggers would let the record of refused files be rewritten.
    raise NotImplementedError("0004_refused_files_append_only protects audit history and is not reversible")
