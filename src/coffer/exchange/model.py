"""Typed values the trading engine hands Coffer: contracts, fills, position snapshots, marks.

Fixed point, precisely (no floats anywhere):
- A price is `price_ticks`, an integer number of the contract's quote ticks per unit of the
  underlying, 1 <= price_ticks <= PRICE_TICKS_MAX.
- A quantity is an integer number of contracts, 1 <= quantity <= QUANTITY_MAX; a position's
  signed size (long > 0, short < 0) stays within +-QUANTITY_MAX.
- Every amount of money is an integer of the settlement asset's minor units (sats, 10^-6 USDT).
- The *value* of one contract at price p, in settlement minor units, is
    linear:   v(p) = p * multiplier                      (exact)
    inverse:  v(p) = -(multiplier // p)                   (floor division, defined rounding)
  so that a position of signed size s entered at cost c (the sum of q * v(p) over the fills that
  built it) has unrealised PnL `s * v(mark) - c` for both kinds. |v(p)| <= VALUE_PER_CONTRACT_MAX
  keeps every product below 2**62 (see `coffer.exchange.accounting`).
- The maintenance margin of a position is ceil(|s| * |v(mark)| * maintenance_margin_bps / 10_000).

Parsers are strict: unknown fields, missing fields, wrong types, bools for ints and
out-of-range values raise typed errors; `X.from_json(x.to_json()) == x`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from coffer.exchange.errors import InvalidContract, InvalidFill, InvalidSnapshot

__all__ = [
    "ContractKind", "Side", "Contract", "Fill", "PositionSnapshot", "MarkPrice", "AccountBalance",
    "QUANTITY_MAX", "PRICE_TICKS_MAX", "VALUE_PER_CONTRACT_MAX", "FEE_MINOR_MAX", "BALANCE_MINOR_MAX",
    "COST_MINOR_MAX", "MAINTENANCE_MARGIN_BPS_MAX", "BPS_DENOMINATOR", "IDENTIFIER_CHARS_MAX",
    "contract_value", "check_identifier",
]

QUANTITY_MAX = (1 << 31) - 1
PRICE_TICKS_MAX = 1 << 40
VALUE_PER_CONTRACT_MAX = (1 << 31) - 1
COST_MINOR_MAX = 1 << 62
FEE_MINOR_MAX = 1 << 40
BALANCE_MINOR_MAX = 1 << 62
MAINTENANCE_MARGIN_BPS_MAX = 10_000
BPS_DENOMINATOR = 10_000
IDENTIFIER_CHARS_MAX = 64
SEQUENCE_MAX = (1 << 63) - 1

_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")


ErrorFactory = Callable[[str, str], Exception]


def _snapshot_error(field: str, message: str) -> Exception:
    return InvalidSnapshot(f"{field}: {message}")


def _contract_error(field: str, message: str) -> Exception:
    return InvalidContract(f"{field}: {message}")


def check_identifier(value: object, *, field: str, error: ErrorFactory = _snapshot_error) -> str:
    """A 1..64 character identifier of letters, digits and . _ : -; anything else is refused."""
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise error(field, f"not an identifier (1..{IDENTIFIER_CHARS_MAX} of A-Z a-z 0-9 . _ : -)")
    return value


def _int(value: object, *, field: str, low: int, high: int, error: ErrorFactory) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(field, "expected an integer")
    if not low <= value <= high:
        raise error(field, f"{value} is outside {low}..{high}")
    return value


def _exact_fields(data: object, fields: tuple[str, ...], what: str, error: ErrorFactory) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise error(what, "expected an object")
    keys = set(data)
    missing = [name for name in fields if name not in keys]
    unknown = sorted(keys - set(fields))
    if missing or unknown:
        raise error(what, f"missing fields {missing}, unknown fields {unknown}")
    return data


class ContractKind(enum.Enum):
    LINEAR = "linear"
    INVERSE = "inverse"


class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


@dataclass(frozen=True, slots=True)
class Contract:
    """A perpetual contract; amounts settle in `settle_asset` minor units."""

    contract_id: str
    kind: ContractKind
    settle_asset: str
    multiplier: int
    maintenance_margin_bps: int

    def __post_init__(self) -> None:
        check_identifier(self.contract_id, field="contract_id", error=_contract_error)
        check_identifier(self.settle_asset, field="settle_asset", error=_contract_error)
        if not isinstance(self.kind, ContractKind):
            raise InvalidContract("kind: expected linear or inverse")
        _int(self.multiplier, field="multiplier", low=1, high=VALUE_PER_CONTRACT_MAX, error=_contract_error)
        _int(self.maintenance_margin_bps, field="maintenance_margin_bps", low=1,
             high=MAINTENANCE_MARGIN_BPS_MAX, error=_contract_error)

    @property
    def price_ticks_max(self) -> int:
        """Highest price whose contract value stays within VALUE_PER_CONTRACT_MAX."""
        if self.kind is ContractKind.LINEAR:
            return min(PRICE_TICKS_MAX, VALUE_PER_CONTRACT_MAX // self.multiplier)
        return PRICE_TICKS_MAX

    def value(self, price_ticks: int) -> int:
        """v(p): the value of one contract at `price_ticks`, in settlement minor units."""
        return contract_value(self.kind, self.multiplier, price_ticks)

    def to_json(self) -> dict[str, Any]:
        return {"contract_id": self.contract_id, "kind": self.kind.value, "settle_asset": self.settle_asset,
                "multiplier": self.multiplier, "maintenance_margin_bps": self.maintenance_margin_bps}

    @classmethod
    def from_json(cls, data: object) -> Contract:
        fields = ("contract_id", "kind", "settle_asset", "multiplier", "maintenance_margin_bps")
        raw = _exact_fields(data, fields, "contract", _contract_error)
        try:
            kind = ContractKind(raw["kind"])
        except ValueError:
            raise InvalidContract("kind: expected linear or inverse") from None
        return cls(raw["contract_id"], kind, raw["settle_asset"], raw["multiplier"], raw["maintenance_margin_bps"])


def contract_value(kind: ContractKind, multiplier: int, price_ticks: int) -> int:
    if kind is ContractKind.LINEAR:
        return price_ticks * multiplier
    return -(multiplier // price_ticks)


@dataclass(frozen=True, slots=True)
class Fill:
    """One side of one trade, as the engine reports it. `fee_minor` < 0 is a rebate."""

    fill_id: str
    sequence: int
    account: str
    contract: str
    side: Side
    quantity: int
    price_ticks: int
    fee_minor: int

    def __post_init__(self) -> None:
        fill_id = self.fill_id if isinstance(self.fill_id, str) else None
        check_identifier(self.fill_id, field="fill_id", error=_fill_error(fill_id))
        _int(self.sequence, field="sequence", low=1, high=SEQUENCE_MAX, error=_fill_error(fill_id))
        check_identifier(self.account, field="account", error=_fill_error(fill_id))
        check_identifier(self.contract, field="contract", error=_fill_error(fill_id))
        if not isinstance(self.side, Side):
            raise InvalidFill("expected buy or sell", field="side", fill_id=fill_id)
        _int(self.quantity, field="quantity", low=1, high=QUANTITY_MAX, error=_fill_error(fill_id))
        _int(self.price_ticks, field="price_ticks", low=1, high=PRICE_TICKS_MAX,
             error=_fill_error(fill_id))
        _int(self.fee_minor, field="fee_minor", low=-FEE_MINOR_MAX, high=FEE_MINOR_MAX,
             error=_fill_error(fill_id))

    @property
    def signed_quantity(self) -> int:
        return self.side.sign * self.quantity

    def to_json(self) -> dict[str, Any]:
        return {"fill_id": self.fill_id, "sequence": self.sequence, "account": self.account,
                "contract": self.contract, "side": self.side.value, "quantity": self.quantity,
                "price_ticks": self.price_ticks, "fee_minor": self.fee_minor}

    @classmethod
    def from_json(cls, data: object) -> Fill:
        fields = ("fill_id", "sequence", "account", "contract", "side", "quantity", "price_ticks", "fee_minor")
        if not isinstance(data, Mapping):
            raise InvalidFill("expected an object", field="fill")
        keys = set(data)
        if keys != set(fields):
            raise InvalidFill(f"missing {sorted(set(fields) - keys)}, unknown {sorted(keys - set(fields))}",
                              field="fill")
        try:
            side = Side(data["side"])
        except ValueError:
            raise InvalidFill("expected buy or sell", field="side") from None
        return cls(data["fill_id"], data["sequence"], data["account"], data["contract"], side,
                   data["quantity"], data["price_ticks"], data["fee_minor"])


def _fill_error(fill_id: str | None) -> ErrorFactory:
    def make(field: str, message: str) -> Exception:
        return InvalidFill(message, field=field, fill_id=fill_id)

    return make


@dataclass(frozen=True, slots=True)
class PositionSnapshot:
    """The engine's position of `account` in `contract`: signed size and entry cost (sum of q*v(p))."""

    account: str
    contract: str
    size: int
    cost_minor: int

    def __post_init__(self) -> None:
        check_identifier(self.account, field="account")
        check_identifier(self.contract, field="contract")
        _int(self.size, field="size", low=-QUANTITY_MAX, high=QUANTITY_MAX, error=_snapshot_error)
        _int(self.cost_minor, field="cost_minor", low=-COST_MINOR_MAX, high=COST_MINOR_MAX, error=_snapshot_error)

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account, "contract": self.contract, "size": self.size,
                "cost_minor": self.cost_minor}

    @classmethod
    def from_json(cls, data: object) -> PositionSnapshot:
        raw = _exact_fields(data, ("account", "contract", "size", "cost_minor"), "position", _snapshot_error)
        return cls(raw["account"], raw["contract"], raw["size"], raw["cost_minor"])


@dataclass(frozen=True, slots=True)
class MarkPrice:
    contract: str
    price_ticks: int

    def __post_init__(self) -> None:
        check_identifier(self.contract, field="contract")
        _int(self.price_ticks, field="price_ticks", low=1, high=PRICE_TICKS_MAX, error=_snapshot_error)

    def to_json(self) -> dict[str, Any]:
        return {"contract": self.contract, "price_ticks": self.price_ticks}

    @classmethod
    def from_json(cls, data: object) -> MarkPrice:
        raw = _exact_fields(data, ("contract", "price_ticks"), "mark", _snapshot_error)
        return cls(raw["contract"], raw["price_ticks"])


@dataclass(frozen=True, slots=True)
class AccountBalance:
    """A margin balance (wallet balance, before unrealised PnL) of `account` in `asset`."""

    account: str
    asset: str
    balance_minor: int

    def __post_init__(self) -> None:
        check_identifier(self.account, field="account")
        check_identifier(self.asset, field="asset")
        _int(self.balance_minor, field="balance_minor", low=-BALANCE_MINOR_MAX, high=BALANCE_MINOR_MAX,
             error=_snapshot_error)

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account, "asset": self.asset, "balance_minor": self.balance_minor}

    @classmethod
    def from_json(cls, data: object) -> AccountBalance:
        raw = _exact_fields(data, ("account", "asset", "balance_minor"), "balance", _snapshot_error)
        return cls(raw["account"], raw["asset"], raw["balance_minor"])
