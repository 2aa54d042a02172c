"""The pure core of the ledger: assets, accounts, postings, transfers and the ring-fence rules.

No I/O, no clock, no randomness: data in, data out. The store (`coffer.ledger.store`) wraps it
and asks the database to enforce the same no-negative rule a second time.

Accounting model (double entry, Assets = Liabilities + Equity, per asset):
- `custody` accounts (what the exchange holds on chain, per wallet) are debit-normal;
- `client`, `company` and `external` accounts are credit-normal.
A posting is (account, side, amount) with a positive amount; a debit raises a debit-normal
account and lowers a credit-normal one. Every transfer has equal debits and credits, so at all
times, per asset: custody total = client total + company total + external total.

This module must never let a transfer through that moves client value to the company book
other than by the kinds that may (`fee`, `pnl` against the insurance fund).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from json.encoder import encode_basestring_ascii as _json_string
from types import MappingProxyType
from typing import Any

from coffer.canonical import NotCanonical, canonical_json
from coffer.invariant import invariant
from coffer.ledger.errors import (
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAccountKey,
    InvalidAmount,
    InvalidTransfer,
    MixedAssets,
    RingFenceViolation,
    UnbalancedTransfer,
    UnknownAsset,
)

__all__ = [
    "AMOUNT_MAX", "BALANCE_MAX", "POSTINGS_MAX", "IDEMPOTENCY_KEY_CHARS_MAX", "METADATA_BYTES_MAX",
    "REASON_CHARS_MAX", "Asset", "BTC", "ETH", "DEFAULT_ASSETS", "Book", "Side", "Kind",
    "CLIENT_ACCOUNTS", "COMPANY_ACCOUNTS", "EXTERNAL_ACCOUNTS", "AccountKey", "Posting", "Transfer",
    "debit", "credit", "check_amount", "check_transfer", "check_ring_fence", "transfer_digest",
    "balance_delta", "apply_transfers", "normal_side", "check_idempotent_replay", "RULES", "KindRule",
]

AMOUNT_MAX = 2**63 - 1  # one posting fits a signed 64-bit integer
BALANCE_MAX = 10**38 - 1  # balances sum many postings (wei!): NUMERIC(38) in the database
POSTINGS_MAX = 64
IDEMPOTENCY_KEY_CHARS_MAX = 128
METADATA_BYTES_MAX = 4096
REASON_CHARS_MAX = 500
_DIGEST_TAG = b"coffer/ledger/transfer/v1\x00"

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_ASSET_RE = re.compile(r"[A-Z][A-Z0-9]{1,9}")
_KEY_RE = re.compile(r"[A-Za-z0-9_.:/@=+\-]{1,128}")


@dataclass(frozen=True, slots=True)
class Asset:
    """An asset and its minor unit: amounts are integers of `minor_unit` (BTC: sat, ETH: wei)."""

    code: str
    decimals: int
    minor_unit: str

    def __post_init__(self) -> None:
        if not _ASSET_RE.fullmatch(self.code):
            raise InvalidAccountKey(f"asset code must match {_ASSET_RE.pattern}: {self.code!r}")
        if type(self.decimals) is not int or not 0 <= self.decimals <= 30:
            raise InvalidTransfer("asset decimals must be an int in 0..30")
        if not _NAME_RE.fullmatch(self.minor_unit):
            raise InvalidTransfer("asset minor unit must be a short name")


BTC = Asset("BTC", 8, "sat")
ETH = Asset("ETH", 18, "wei")
DEFAULT_ASSETS: tuple[Asset, ...] = (BTC, ETH)


class Book(StrEnum):
    CLIENT = "client"
    COMPANY = "company"
    CUSTODY = "custody"
    EXTERNAL = "external"


class Side(StrEnum):
    DEBIT = "D"
    CREDIT = "C"


class Kind(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL_HOLD = "withdrawal_hold"
    WITHDRAWAL_RELEASE = "withdrawal_release"
    WITHDRAWAL_SETTLE = "withdrawal_settle"
    FEE = "fee"
    FEE_REBATE = "fee_rebate"
    PNL = "pnl"
    REFILL = "refill"
    SWEEP = "sweep"
    NETWORK_FEE = "network_fee"
    COMPANY_DEPOSIT = "company_deposit"
    COMPANY_WITHDRAWAL = "company_withdrawal"
    COMPANY_TRANSFER = "company_transfer"
    ADJUSTMENT = "adjustment"


CLIENT_ACCOUNTS = ("available", "held")
COMPANY_ACCOUNTS = ("fees", "insurance_fund", "operating")
EXTERNAL_ACCOUNTS = ("world",)


def normal_side(book: Book) -> Side:
    """Custody (assets) is debit-normal; client, company and external are credit-normal."""
    return Side.DEBIT if book is Book.CUSTODY else Side.CREDIT


@dataclass(frozen=True, slots=True, order=True)
class AccountKey:
    """One account: `book`, `name` (wallet id for custody), `asset`, and `client_id` for clients.

    Its text form is `client:<client_id>:<asset>:<name>` or `<book>:<name>:<asset>`.
    """

    book: Book
    name: str
    asset: str
    client_id: str | None = None
    text: str = field(init=False, repr=False, compare=False)
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.book, Book):
            raise InvalidAccountKey(f"unknown book {self.book!r}")
        if not isinstance(self.name, str) or not _NAME_RE.fullmatch(self.name):
            raise InvalidAccountKey(f"account name must match {_NAME_RE.pattern}")
        if not isinstance(self.asset, str) or not _ASSET_RE.fullmatch(self.asset):
            raise InvalidAccountKey(f"asset code must match {_ASSET_RE.pattern}")
        if (self.client_id is not None) != (self.book is Book.CLIENT):
            raise InvalidAccountKey("client accounts, and only they, carry a client id")
        if self.client_id is not None and not _NAME_RE.fullmatch(self.client_id):
            raise InvalidAccountKey(f"client id must match {_NAME_RE.pattern}")
        allowed = {Book.CLIENT: CLIENT_ACCOUNTS, Book.COMPANY: COMPANY_ACCOUNTS,
                   Book.EXTERNAL: EXTERNAL_ACCOUNTS}.get(self.book)
        if allowed is not None and self.name not in allowed:
            raise InvalidAccountKey(f"{self.book} accounts are {', '.join(allowed)}; not {self.name!r}")
        text = (f"client:{self.client_id}:{self.asset}:{self.name}" if self.client_id is not None
                else f"{self.book}:{self.name}:{self.asset}")
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "_hash", hash(text))

    # keys are hashed on every posting of every transfer: hash and compare the cached text form
    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if other is self:
            return True
        if type(other) is not AccountKey:
            return NotImplemented
        return self.text == other.text

    @classmethod
    def available(cls, client_id: str, asset: str) -> AccountKey:
        return cls(Book.CLIENT, "available", asset, client_id)

    @classmethod
    def held(cls, client_id: str, asset: str) -> AccountKey:
        return cls(Book.CLIENT, "held", asset, client_id)

    @classmethod
    def company(cls, name: str, asset: str) -> AccountKey:
        return cls(Book.COMPANY, name, asset)

    @classmethod
    def custody(cls, wallet: str, asset: str) -> AccountKey:
        return cls(Book.CUSTODY, wallet, asset)

    @classmethod
    def world(cls, asset: str) -> AccountKey:
        return cls(Book.EXTERNAL, "world", asset)

    def __str__(self) -> str:
        return self.text

    @classmethod
    def parse(cls, text: str) -> AccountKey:
        """The inverse of `str()`; raises InvalidAccountKey."""
        parts = text.split(":") if isinstance(text, str) else []
        try:
            if len(parts) == 4 and parts[0] == Book.CLIENT:
                return cls(Book.CLIENT, parts[3], parts[2], parts[1])
            if len(parts) == 3 and parts[0] != Book.CLIENT:
                return cls(Book(parts[0]), parts[1], parts[2])
        except ValueError:
            pass
        raise InvalidAccountKey(f"not an account key: {text!r}")


def check_amount(amount: object) -> int:
    """Return `amount` if it is an int in 1 .. AMOUNT_MAX; raise InvalidAmount otherwise."""
    if type(amount) is not int:
        raise InvalidAmount(f"amount must be an int of minor units, not {type(amount).__name__}")
    if amount <= 0:
        raise InvalidAmount("amount must be positive")
    if amount > AMOUNT_MAX:
        raise InvalidAmount("amount must fit in 63 bits (at most 2**63 - 1)")
    return amount


@dataclass(frozen=True, slots=True)
class Posting:
    account: AccountKey
    side: Side
    amount: int

    def __post_init__(self) -> None:
        if not isinstance(self.account, AccountKey):
            raise InvalidTransfer("posting account must be an AccountKey")
        if not isinstance(self.side, Side):
            raise InvalidTransfer("posting side must be Side.DEBIT or Side.CREDIT")
        check_amount(self.amount)


def debit(account: AccountKey, amount: int) -> Posting:
    return Posting(account, Side.DEBIT, amount)


def credit(account: AccountKey, amount: int) -> Posting:
    return Posting(account, Side.CREDIT, amount)


def _encode_metadata(value: object) -> bytes:
    if not isinstance(value, Mapping):
        raise InvalidTransfer("metadata must be a mapping")
    if not value:
        return b"{}"
    try:
        encoded = canonical_json(dict(value))
    except NotCanonical as exc:
        raise InvalidTransfer(f"metadata: {exc}") from exc
    if len(encoded) > METADATA_BYTES_MAX:
        raise InvalidTransfer(f"metadata must encode to at most {METADATA_BYTES_MAX} bytes")
    return encoded


@dataclass(frozen=True, slots=True)
class Transfer:
    """A request to move value: postings that balance, a kind, an idempotency key, a time.

    `metadata` is plain JSON data (no floats), snapshotted at construction: `metadata_json` is
    what is stored and digested, so a caller mutating its dict afterwards changes nothing.
    """

    idempotency_key: str
    kind: Kind
    postings: tuple[Posting, ...]
    at: datetime
    metadata: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""
    metadata_json: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "postings", tuple(self.postings))
        encoded = _encode_metadata(self.metadata)
        object.__setattr__(self, "metadata_json", encoded)
        object.__setattr__(self, "metadata", MappingProxyType(json.loads(encoded)))

    @property
    def asset(self) -> str:
        return self.postings[0].account.asset if self.postings else ""


def _check_shape(transfer: Transfer) -> None:
    if not isinstance(transfer.idempotency_key, str) or not _KEY_RE.fullmatch(transfer.idempotency_key):
        raise InvalidTransfer(f"idempotency key must match {_KEY_RE.pattern}")
    if not isinstance(transfer.kind, Kind):
        raise InvalidTransfer(f"unknown transfer kind {transfer.kind!r}")
    if not isinstance(transfer.at, datetime) or transfer.at.utcoffset() is None:
        raise InvalidTransfer("transfer time must be a timezone-aware datetime")
    if not isinstance(transfer.reason, str) or len(transfer.reason) > REASON_CHARS_MAX:
        raise InvalidTransfer(f"reason must be a string of at most {REASON_CHARS_MAX} characters")
    if not 2 <= len(transfer.postings) <= POSTINGS_MAX:
        raise InvalidTransfer(f"a transfer has 2..{POSTINGS_MAX} postings")


def check_transfer(transfer: Transfer, assets: Collection[str]) -> None:
    """Every rule a transfer must pass on its own: shape, amounts, one known asset, balance, ring fence.

    Runs once per transfer on the batched path, hence one loop over the postings.
    """
    _check_shape(transfer)
    asset_codes = set()
    debit_total = credit_total = 0
    for posting in transfer.postings:
        if type(posting) is not Posting:
            raise InvalidTransfer("postings must be Posting values")
        amount = posting.amount
        if type(amount) is not int or not 0 < amount <= AMOUNT_MAX:
            check_amount(amount)  # re-check: a dataclass can be bypassed with object.__setattr__
        asset_codes.add(posting.account.asset)
        if posting.side is Side.DEBIT:
            debit_total += amount
        else:
            credit_total += amount
    if len(asset_codes) != 1:
        raise MixedAssets(f"one transfer moves one asset; found {', '.join(sorted(asset_codes))}")
    (asset,) = asset_codes
    if asset not in assets:
        raise UnknownAsset(f"asset {asset} is not configured")
    if debit_total != credit_total:
        raise UnbalancedTransfer(f"debits {debit_total} != credits {credit_total}",
                                 debit_total=debit_total, credit_total=credit_total)
    check_ring_fence(transfer.kind, transfer.postings, reason=transfer.reason)


@dataclass(frozen=True, slots=True)
class KindRule:
    """Which accounts a kind may debit and credit: (book, account names or None for any)."""

    debits: tuple[tuple[Book, tuple[str, ...] | None], ...]
    credits: tuple[tuple[Book, tuple[str, ...] | None], ...]
    one_client: bool = False
    # the same rule as sets, for a fast membership test: books open whole, (book, name) pairs
    debit_books: frozenset[Book] = field(init=False, repr=False, compare=False)
    debit_accounts: frozenset[tuple[Book, str]] = field(init=False, repr=False, compare=False)
    credit_books: frozenset[Book] = field(init=False, repr=False, compare=False)
    credit_accounts: frozenset[tuple[Book, str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for side, slots in (("debit", self.debits), ("credit", self.credits)):
            books = frozenset(book for book, names in slots if names is None)
            accounts = frozenset((book, name) for book, names in slots if names is not None for name in names)
            object.__setattr__(self, f"{side}_books", books)
            object.__setattr__(self, f"{side}_accounts", accounts)

    def allows(self, posting: Posting) -> bool:
        account = posting.account
        if posting.side is Side.DEBIT:
            return account.book in self.debit_books or (account.book, account.name) in self.debit_accounts
        return account.book in self.credit_books or (account.book, account.name) in self.credit_accounts


_ANY_CUSTODY = (Book.CUSTODY, None)
_AVAILABLE = (Book.CLIENT, ("available",))
_HELD = (Book.CLIENT, ("held",))
_WORLD = (Book.EXTERNAL, ("world",))
_ANY_COMPANY = (Book.COMPANY, None)
_EVERY_BOOK = tuple((book, None) for book in Book)

RULES: Mapping[Kind, KindRule] = MappingProxyType({
    # on-chain receipt credited to a client; unattributed receipts wait in external:world
    Kind.DEPOSIT: KindRule((_ANY_CUSTODY, _WORLD), (_AVAILABLE, _WORLD)),
    Kind.WITHDRAWAL_HOLD: KindRule((_AVAILABLE,), (_HELD,), one_client=True),
    Kind.WITHDRAWAL_RELEASE: KindRule((_HELD,), (_AVAILABLE,), one_client=True),
    # the amount leaves custody on chain (network fee included when the client pays it)
    Kind.WITHDRAWAL_SETTLE: KindRule((_HELD, _WORLD), (_ANY_CUSTODY,)),
    Kind.FEE: KindRule(((Book.CLIENT, None),), ((Book.COMPANY, ("fees",)),), one_client=True),
    Kind.FEE_REBATE: KindRule(((Book.COMPANY, ("fees",)),), (_AVAILABLE,), one_client=True),
    # realised PnL: between clients, and against the insurance fund only
    Kind.PNL: KindRule((_AVAILABLE, (Book.COMPANY, ("insurance_fund",))),
                       (_AVAILABLE, (Book.COMPANY, ("insurance_fund",)))),
    Kind.REFILL: KindRule((_ANY_CUSTODY,), (_ANY_CUSTODY,)),
    Kind.SWEEP: KindRule((_ANY_CUSTODY,), (_ANY_CUSTODY,)),
    # the exchange's own on-chain fees (sweeps, refills, consolidations) are a company cost
    Kind.NETWORK_FEE: KindRule(((Book.COMPANY, ("operating",)),), (_ANY_CUSTODY,)),
    Kind.COMPANY_DEPOSIT: KindRule((_ANY_CUSTODY,), (_ANY_COMPANY,)),
    Kind.COMPANY_WITHDRAWAL: KindRule((_ANY_COMPANY,), (_ANY_CUSTODY,)),
    Kind.COMPANY_TRANSFER: KindRule((_ANY_COMPANY,), (_ANY_COMPANY,)),
    Kind.ADJUSTMENT: KindRule(_EVERY_BOOK, _EVERY_BOOK),
})


def check_ring_fence(kind: Kind, postings: Sequence[Posting], *, reason: str = "") -> None:
    """Raise RingFenceViolation unless `kind` may move value between these accounts."""
    rule = RULES.get(kind)
    if rule is None:
        raise RingFenceViolation(f"no rule for kind {kind!r}", rule="unknown_kind")
    for posting in postings:
        if not rule.allows(posting):
            side = "debit" if posting.side is Side.DEBIT else "credit"
            raise RingFenceViolation(f"{kind} may not {side} {posting.account}", rule=f"{kind}_{side}")
    clients = {p.account.client_id for p in postings if p.account.book is Book.CLIENT}
    if rule.one_client and len(clients) > 1:
        raise RingFenceViolation(f"{kind} moves value within one client's accounts only",
                                 rule=f"{kind}_one_client")
    if kind is Kind.ADJUSTMENT:
        if not reason.strip():
            raise RingFenceViolation("an adjustment needs a reason", rule="adjustment_reason")
        client_debited = any(p.account.book is Book.CLIENT and p.side is Side.DEBIT for p in postings)
        company_credited = any(p.account.book is Book.COMPANY and p.side is Side.CREDIT for p in postings)
        if client_debited and company_credited:
            raise RingFenceViolation("an adjustment may not move client value to the company book",
                                     rule="client_to_company")


def transfer_digest(transfer: Transfer) -> str:
    """SHA-256 of the transfer's content: what idempotency compares. The time is not content:
    a retry made later with the same key and the same postings is the same request.

    The bytes hashed are `canonical_json({"key", "kind", "metadata", "postings", "reason"})`,
    assembled by hand from parts already known to be canonical (this runs once per transfer).
    """
    quote = _json_string
    postings = ",".join(f'[{quote(p.account.text)},"{p.side._value_}",{p.amount}]' for p in transfer.postings)
    body = (f'{{"key":{quote(transfer.idempotency_key)},"kind":"{transfer.kind._value_}",'
            f'"metadata":{transfer.metadata_json.decode()},"postings":[{postings}],'
            f'"reason":{quote(transfer.reason)}}}')
    return hashlib.sha256(_DIGEST_TAG + body.encode()).hexdigest()


def check_idempotent_replay(idempotency_key: str, stored_digest: str, digest: str) -> None:
    """The same key may come again only with the same content."""
    if stored_digest != digest:
        raise IdempotencyConflict(f"idempotency key {idempotency_key!r} was used for a different transfer",
                                  idempotency_key=idempotency_key)


def balance_delta(posting: Posting) -> int:
    """The change a posting makes to its account's balance (in the account's normal orientation)."""
    return posting.amount if posting.side is normal_side(posting.account.book) else -posting.amount


def apply_transfers(balances: Mapping[AccountKey, int], transfers: Sequence[Transfer]) -> dict[AccountKey, int]:
    """Apply `transfers` in order to `balances`; return the new balance of every touched account.

    Raises InsufficientFunds (naming the transfer's index) if any client balance would go below
    zero at any point, and leaves `balances` untouched.
    """
    # keyed by the account's text inside the loop: str hashing and equality run in C
    start = {key.text: value for key, value in balances.items()}
    keys: dict[str, AccountKey] = {}
    updated: dict[str, int] = {}
    custody, client, debit_side = Book.CUSTODY, Book.CLIENT, Side.DEBIT
    for index, transfer in enumerate(transfers):
        touched: dict[str, int] = {}
        for posting in transfer.postings:
            account = posting.account
            text = account.text
            value = touched.get(text)
            if value is None:
                value = updated.get(text)
                if value is None:
                    value = start.get(text, 0)
                    keys[text] = account
            debit_normal = account.book is custody
            if (posting.side is debit_side) is debit_normal:
                touched[text] = value + posting.amount
            else:
                touched[text] = value - posting.amount
        for text, value in touched.items():
            if value < 0 and keys[text].book is client:
                raise InsufficientFunds(f"{text} would go below zero in transfer {index}", account=text, index=index)
            if not -BALANCE_MAX <= value <= BALANCE_MAX:
                invariant(False, f"balance of {text} out of range")
        updated.update(touched)
    return {keys[text]: value for text, value in updated.items()}
