"""ledger: database guards behind the core's rules — the ring fence and an append-only history.

- A transfer that debits a client account and credits a company account is refused unless it is
  a `fee` to `fees` or a `pnl` against `insurance_fund` (the ring fence, again in the database).
- Transfers and postings are never updated or deleted.

PostgreSQL checks inserts once per statement (transition tables: one query per COPY) and sees
the postings of that statement, so the postings of one transfer must be written in one statement
(Ledger always does; `Ledger.check_consistency` re-checks every stored transfer anyway). SQLite,
which has no statement triggers, checks each posting row against all postings of its transfer.

Revision ID: ledger_0002
"""

from alembic import op

revision = "ledger_0002"
down_revision = "ledger_0001"
branch_labels = None
depends_on = None

_BREACH = """
    SELECT 1 FROM ledger_postings AS d
    JOIN ledger_accounts AS da ON da.id = d.account_id AND da.book = 'client'
    JOIN ledger_postings AS c ON c.transfer_id = d.transfer_id AND c.side = 'C'
    JOIN ledger_accounts AS ca ON ca.id = c.account_id AND ca.book = 'company'
    JOIN ledger_transfers AS t ON t.id = d.transfer_id
    WHERE d.side = 'D' AND d.transfer_id {transfers}
      AND NOT ((t.kind = 'fee' AND ca.name = 'fees') OR (t.kind = 'pnl' AND ca.name = 'insurance_fund'))
"""

# every statement below is built from constants of this module only
_POSTGRES_UP = [
    # One pass over the statement's new postings, grouped per transfer (linear whatever the plan:
    # transition tables have no statistics), then the kind of the few flagged transfers by key.
    """CREATE FUNCTION ledger_ring_fence() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF EXISTS (
        SELECT 1 FROM (
          SELECT p.transfer_id,
                 bool_or(p.side = 'D' AND a.book = 'client') AS client_debit,
                 bool_or(p.side = 'C' AND a.book = 'company' AND a.name = 'fees') AS to_fees,
                 bool_or(p.side = 'C' AND a.book = 'company' AND a.name = 'insurance_fund') AS to_insurance,
                 bool_or(p.side = 'C' AND a.book = 'company' AND a.name NOT IN ('fees', 'insurance_fund')) AS to_other
          FROM new_postings AS p JOIN ledger_accounts AS a ON a.id = p.account_id
          GROUP BY p.transfer_id
        ) AS g
        WHERE g.client_debit AND (g.to_other OR
          ((g.to_fees OR g.to_insurance) AND NOT EXISTS (
             SELECT 1 FROM ledger_transfers AS t WHERE t.id = g.transfer_id
               AND ((t.kind = 'fee' AND NOT g.to_insurance) OR (t.kind = 'pnl' AND NOT g.to_fees)))))
      ) THEN
        RAISE EXCEPTION 'ledger_ring_fence: client value moved to the company book'
          USING ERRCODE = 'check_violation';
      END IF;
      RETURN NULL;
    END $$""",
    """CREATE TRIGGER ledger_ring_fence AFTER INSERT ON ledger_postings
       REFERENCING NEW TABLE AS new_postings FOR EACH STATEMENT EXECUTE FUNCTION ledger_ring_fence()""",
    """CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'ledger_append_only: % on % refused', TG_OP, TG_TABLE_NAME USING ERRCODE = 'check_violation';
    END $$""",
    """CREATE TRIGGER ledger_transfers_append_only BEFORE UPDATE OR DELETE ON ledger_transfers
       FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()""",
    """CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE ON ledger_postings
       FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()""",
]
_POSTGRES_DOWN = [
    "DROP TRIGGER ledger_postings_append_only ON ledger_postings",
    "DROP TRIGGER ledger_transfers_append_only ON ledger_transfers",
    "DROP FUNCTION ledger_append_only()",
    "DROP TRIGGER ledger_ring_fence ON ledger_postings",
    "DROP FUNCTION ledger_ring_fence()",
]

_SQLITE_UP = [
    f"""CREATE TRIGGER ledger_ring_fence AFTER INSERT ON ledger_postings
       WHEN EXISTS ({_BREACH.format(transfers="= NEW.transfer_id")})
       BEGIN SELECT RAISE(ABORT, 'ledger_ring_fence: client value moved to the company book'); END""",  # noqa: S608
    *[f"""CREATE TRIGGER {table}_append_only_{action.lower()} BEFORE {action} ON {table}
       BEGIN SELECT RAISE(ABORT, 'ledger_append_only: {action} on {table} refused'); END"""
      for table in ("ledger_transfers", "ledger_postings") for action in ("UPDATE", "DELETE")],
]
_SQLITE_DOWN = [
    "DROP TRIGGER ledger_ring_fence",
    *[f"DROP TRIGGER {table}_append_only_{action.lower()}"
      for table in ("ledger_transfers", "ledger_postings") for action in ("UPDATE", "DELETE")],
]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in _POSTGRES_UP if postgres else _SQLITE_UP:
        op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in _POSTGRES_DOWN if postgres else _SQLITE_DOWN:
        op.execute(statement)
