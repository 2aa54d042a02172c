"""Typed engine data: fixed-point values, strict parsing, round trips."""

from __future__ import annotations

import pytest

from coffer.exchange import (
    AccountBalance,
    Contract,
    ContractKind,
    Fill,
    InvalidContract,
    InvalidFill,
    InvalidSnapshot,
    MarkPrice,
    PositionSnapshot,
    Side,
)
from coffer.exchange.feed import ExchangeSnapshot, LedgerMarginTotal
from coffer.exchange.model import QUANTITY_MAX, VALUE_PER_CONTRACT_MAX

LINEAR = Contract("BTC-USDT", ContractKind.LINEAR, "USDT", 100, 50)
INVERSE = Contract("BTC-USD", ContractKind.INVERSE, "BTC", 200_000_000, 50)


def fill(**changes: object) -> Fill:
    fields: dict[str, object] = {"fill_id": "f1", "sequence": 1, "account": "a1", "contract": "BTC-USDT",
                                 "side": Side.BUY, "quantity": 3, "price_ticks": 600_000, "fee_minor": 9}
    fields.update(changes)
    return Fill(**fields)  # type: ignore[arg-type]


def test_linear_value_is_price_times_multiplier() -> None:
    """A linear contract is worth price x multiplier minor units."""
    assert 60_000_000 == LINEAR.value(600_000)


def test_inverse_value_is_negative_floor() -> None:
    """An inverse contract's value is -(multiplier // price), rounded by floor division."""
    assert -(200_000_000 // 120_001) == INVERSE.value(120_001)


def test_linear_price_bound_keeps_value_in_range() -> None:
    """The highest accepted linear price keeps the contract value within the bound."""
    assert VALUE_PER_CONTRACT_MAX >= LINEAR.value(LINEAR.price_ticks_max)


@pytest.mark.parametrize("changes", [{"multiplier": 0}, {"multiplier": True}, {"maintenance_margin_bps": 0},
                                     {"maintenance_margin_bps": 10_001}, {"contract_id": "bad id"},
                                     {"settle_asset": ""}])
def test_contract_out_of_range_refused(changes: dict[str, object]) -> None:
    """A contract with an out-of-range or malformed field is refused."""
    fields: dict[str, object] = {"contract_id": "X", "kind": ContractKind.LINEAR, "settle_asset": "USDT",
                                 "multiplier": 1, "maintenance_margin_bps": 50}
    fields.update(changes)
    with pytest.raises(InvalidContract):
        Contract(**fields)  # type: ignore[arg-type]


def test_contract_round_trips_and_rejects_unknown_kind() -> None:
    """Contracts round-trip through JSON; an unknown kind is refused."""
    assert INVERSE == Contract.from_json(INVERSE.to_json())
    with pytest.raises(InvalidContract):
        Contract.from_json({**LINEAR.to_json(), "kind": "quanto"})


@pytest.mark.parametrize("field,value", [("quantity", 0), ("quantity", QUANTITY_MAX + 1), ("quantity", True),
                                         ("price_ticks", 0), ("sequence", 0), ("fee_minor", 1 << 41),
                                         ("account", "a b"), ("fill_id", "")])
def test_fill_out_of_range_refused_naming_field(field: str, value: object) -> None:
    """A fill field out of range is refused with an error naming the field."""
    with pytest.raises(InvalidFill) as caught:
        fill(**{field: value})
    assert field == caught.value.field


def test_fill_round_trips_and_parser_is_strict() -> None:
    """A fill round-trips; unknown fields, missing fields and a bad side are refused."""
    original = fill(side=Side.SELL)
    assert original == Fill.from_json(original.to_json())
    with pytest.raises(InvalidFill):
        Fill.from_json({**original.to_json(), "extra": 1})
    data = original.to_json()
    del data["fee_minor"]
    with pytest.raises(InvalidFill):
        Fill.from_json(data)
    with pytest.raises(InvalidFill):
        Fill.from_json({**original.to_json(), "side": "hold"})
    assert -3 == original.signed_quantity


def test_snapshot_round_trips_and_is_strict() -> None:
    """A snapshot round-trips; an unknown field or a float is refused."""
    snapshot = ExchangeSnapshot(5, (PositionSnapshot("a1", "BTC-USDT", -2, -120),),
                                (AccountBalance("a1", "USDT", 10),), (MarkPrice("BTC-USDT", 7),), ("a2",))
    assert snapshot == ExchangeSnapshot.from_json(snapshot.to_json())
    with pytest.raises(InvalidSnapshot):
        ExchangeSnapshot.from_json({**snapshot.to_json(), "more": []})
    bad = snapshot.to_json()
    bad["balances"][0]["balance_minor"] = 1.5
    with pytest.raises(InvalidSnapshot):
        ExchangeSnapshot.from_json(bad)


def test_ledger_total_round_trips_and_refuses_bools() -> None:
    """Ledger totals round-trip and refuse booleans as amounts."""
    total = LedgerMarginTotal("a1", "BTC", 1, -2, 3)
    assert total == LedgerMarginTotal.from_json(total.to_json())
    with pytest.raises(InvalidSnapshot):
        LedgerMarginTotal("a1", "BTC", True, 0, 0)  # type: ignore[arg-type]
