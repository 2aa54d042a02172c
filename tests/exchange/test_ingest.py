"""Strict ingestion of the fill log: gaps, duplicates and bad fills refused, nothing kept."""

from __future__ import annotations

import pytest

from coffer.exchange import (
    ContractBook,
    DuplicateFill,
    DuplicateSequence,
    Fill,
    FillLog,
    InvalidContract,
    InvalidFill,
    SequenceGap,
    Side,
    UnknownContract,
)
from coffer.exchange.simulator import DEFAULT_CONTRACTS


def make(sequence: int, fill_id: str | None = None, **changes: object) -> Fill:
    fields: dict[str, object] = {"fill_id": fill_id or f"f{sequence}", "sequence": sequence, "account": "a1",
                                 "contract": "BTC-USDT", "side": Side.BUY, "quantity": 1, "price_ticks": 600_000,
                                 "fee_minor": 1}
    fields.update(changes)
    return Fill(**fields)  # type: ignore[arg-type]


@pytest.fixture
def log() -> FillLog:
    return FillLog(ContractBook(DEFAULT_CONTRACTS))


def test_in_order_fills_become_columns(log: FillLog) -> None:
    """Fills in sequence are kept as columns with signed quantities."""
    assert 2 == log.ingest([make(1), make(2, side=Side.SELL, quantity=4)])
    columns = log.columns()
    assert [1, -4] == columns.signed_quantity.tolist()
    assert 2 == log.last_sequence


def test_gap_refused_and_batch_not_kept(log: FillLog) -> None:
    """A sequence gap is refused and no fill of the batch is kept."""
    with pytest.raises(SequenceGap) as caught:
        log.ingest([make(1), make(3)])
    assert (2, 3) == (caught.value.expected, caught.value.received)
    assert 0 == len(log)


def test_repeated_sequence_refused(log: FillLog) -> None:
    """A sequence number seen before is refused."""
    log.ingest([make(1)])
    with pytest.raises(DuplicateSequence):
        log.ingest([make(1, fill_id="other")])


def test_repeated_fill_id_refused(log: FillLog) -> None:
    """A fill id seen before is refused even under a new sequence number."""
    log.ingest([make(1)])
    with pytest.raises(DuplicateFill):
        log.ingest([make(2, fill_id="f1")])
    with pytest.raises(DuplicateFill):
        log.ingest([make(2, fill_id="x"), make(3, fill_id="x")])
    assert 1 == len(log)


def test_unknown_contract_refused(log: FillLog) -> None:
    """A fill for a contract that is not configured is refused."""
    with pytest.raises(UnknownContract):
        log.ingest([make(1, contract="DOGE-USDT")])


def test_price_above_contract_bound_refused(log: FillLog) -> None:
    """A linear price whose contract value would overflow the bound is refused."""
    with pytest.raises(InvalidFill) as caught:
        log.ingest([make(1, price_ticks=1 << 39)])
    assert "price_ticks" == caught.value.field


def test_contract_configured_twice_refused() -> None:
    """A contract book with a repeated contract id is refused."""
    with pytest.raises(InvalidContract):
        ContractBook(DEFAULT_CONTRACTS + DEFAULT_CONTRACTS[:1])
