"""Lifetime account nonces: created once, shown to their client, used for every snapshot."""

from __future__ import annotations

import random

import pytest
from sqlalchemy.engine import Engine

from coffer.db import make_engine, migrate
from coffer.por.errors import MissingNonce, NonceExists
from coffer.por.nonces import create_account_nonce, ensure_account_nonces, show_account_nonce


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Engine:
    engine = make_engine(sqlite_url)
    migrate(engine)
    return engine


def test_nonce_created_once_and_shown(sqlite_engine: Engine) -> None:
    """A nonce is created once, shown in hex, and a second creation is refused."""
    nonce = create_account_nonce(sqlite_engine, 2**64 - 1, rng=random.Random(1).randbytes)
    assert nonce.hex() == show_account_nonce(sqlite_engine, 2**64 - 1)
    with pytest.raises(NonceExists):
        create_account_nonce(sqlite_engine, 2**64 - 1)


def test_ensure_creates_missing_only(sqlite_engine: Engine) -> None:
    """ensure_account_nonces keeps existing nonces and creates the missing ones."""
    first = create_account_nonce(sqlite_engine, 7)
    nonces = ensure_account_nonces(sqlite_engine, [7, 8, 9])
    assert first == nonces[7]
    assert {7, 8, 9} == set(nonces)
    assert nonces == ensure_account_nonces(sqlite_engine, [7, 8, 9])


def test_show_unknown_account(sqlite_engine: Engine) -> None:
    """Showing the nonce of an account that has none raises MissingNonce."""
    with pytest.raises(MissingNonce):
        show_account_nonce(sqlite_engine, 12)
