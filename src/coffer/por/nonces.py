"""Lifetime account nonces: created once per account, shown to its client, never replaced.

The nonce blinds the account's leaves in every snapshot (through a per-snapshot sub-nonce), so
it is private to the client: show it only in the client's own security centre, never log it.
Account numbers are unsigned 64-bit and are stored as decimal text (no signed-integer limit).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from coffer.db import metadata
from coffer.por.errors import LiabilityOutOfRange, MissingNonce, NonceExists
from coffer.por.liabilities import RandomBytes, new_account_nonce
from coffer.por.verify import U64_MAX

__all__ = ["account_nonces", "create_account_nonce", "ensure_account_nonces", "show_account_nonce",
           "load_account_nonces"]

account_nonces = sa.Table(
    "por_account_nonces", metadata,
    sa.Column("account_number", sa.String(20), primary_key=True),
    sa.Column("nonce_hex", sa.String(64), nullable=False),
)


def _key(account_number: int) -> str:
    if not 0 <= account_number <= U64_MAX:
        raise LiabilityOutOfRange(f"account number {account_number} is not an unsigned 64-bit integer")
    return str(account_number)


def create_account_nonce(engine: Engine, account_number: int, *, rng: RandomBytes = os.urandom) -> bytes:
    """Create and store the account's lifetime nonce; refuses if it already has one."""
    nonce = new_account_nonce(rng)
    with engine.begin() as conn:
        exists = conn.execute(sa.select(account_nonces.c.account_number)
                              .where(account_nonces.c.account_number == _key(account_number))).first()
        if exists is not None:
            raise NonceExists(f"account {account_number} already has a lifetime nonce")
        conn.execute(account_nonces.insert().values(account_number=_key(account_number), nonce_hex=nonce.hex()))
    return nonce


def load_account_nonces(engine: Engine, accounts: Iterable[int]) -> dict[int, bytes]:
    wanted = {_key(account) for account in accounts}
    with engine.connect() as conn:
        rows = conn.execute(sa.select(account_nonces)).all() if len(wanted) > 500 else conn.execute(
            sa.select(account_nonces).where(account_nonces.c.account_number.in_(wanted))).all()
    return {int(row.account_number): bytes.fromhex(row.nonce_hex) for row in rows if row.account_number in wanted}


def ensure_account_nonces(engine: Engine, accounts: Iterable[int], *, rng: RandomBytes = os.urandom) -> dict[int, bytes]:
    """Every account's nonce, creating the missing ones (a new client's first snapshot)."""
    accounts = list(accounts)
    nonces = load_account_nonces(engine, accounts)
    for account in accounts:
        if account not in nonces:
            nonces[account] = create_account_nonce(engine, account, rng=rng)
    return nonces


def show_account_nonce(engine: Engine, account_number: int) -> str:
    """The nonce in hex, for the client's own security centre only."""
    nonces = load_account_nonces(engine, [account_number])
    if account_number not in nonces:
        raise MissingNonce(f"account {account_number} has no lifetime nonce yet")
    return nonces[account_number].hex()
