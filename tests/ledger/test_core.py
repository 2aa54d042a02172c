"""The pure core: accounts, amounts, balance, ring fence, digests, applying transfers to balances."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from coffer.canonical import canonical_json
from coffer.errors import InvariantViolation, Refused
from coffer.ledger import (
    AMOUNT_MAX,
    AccountKey,
    Asset,
    Book,
    InsufficientFunds,
    InvalidAccountKey,
    InvalidAmount,
    InvalidTransfer,
    Kind,
    MixedAssets,
    Posting,
    RingFenceViolation,
    Side,
    Transfer,
    UnbalancedTransfer,
    UnknownAsset,
    apply_transfers,
    check_ring_fence,
    check_transfer,
    credit,
    debit,
    transfer_digest,
)

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ASSETS = {"BTC", "ETH"}
HOT = AccountKey.custody("hot", "BTC")
COLD = AccountKey.custody("cold", "BTC")
ALICE = AccountKey.available("alice", "BTC")
ALICE_HELD = AccountKey.held("alice", "BTC")
BOB = AccountKey.available("bob", "BTC")
FEES = AccountKey.company("fees", "BTC")
INSURANCE = AccountKey.company("insurance_fund", "BTC")
OPERATING = AccountKey.company("operating", "BTC")
WORLD = AccountKey.world("BTC")


def transfer(kind: Kind, *postings: Posting, key: str = "k1", reason: str = "", **metadata: object) -> Transfer:
    return Transfer(key, kind, postings, T0, metadata, reason)


def test_account_key_text_round_trips() -> None:
    """Every account key parses back from its text form."""
    for key in (HOT, ALICE, ALICE_HELD, FEES, WORLD, AccountKey.custody("eth-deposit", "ETH")):
        assert key == AccountKey.parse(str(key))
    assert "client:alice:BTC:available" == str(ALICE)
    assert "custody:hot:BTC" == str(HOT)


@pytest.mark.parametrize("text", ["", "client:alice:BTC", "company:fees", "client:a:BTC:savings",
                                  "company:lending:BTC", "vault:x:BTC", "custody:hot:btc", "custody:a b:BTC",
                                  "external:mars:BTC", "custody:hot:BTC:extra"])
def test_bad_account_keys_are_refused(text: str) -> None:
    """Malformed account keys (unknown book, name or asset format) raise InvalidAccountKey."""
    with pytest.raises(InvalidAccountKey):
        AccountKey.parse(text)


def test_client_id_only_on_client_accounts() -> None:
    """A client account needs a client id and no other account may carry one."""
    with pytest.raises(InvalidAccountKey):
        AccountKey(Book.CLIENT, "available", "BTC")
    with pytest.raises(InvalidAccountKey):
        AccountKey(Book.COMPANY, "fees", "BTC", "alice")


def test_asset_has_minor_units() -> None:
    """Assets are configured with their minor unit and a bad code is refused."""
    assert ("sat", 8) == (Asset("BTC", 8, "sat").minor_unit, Asset("BTC", 8, "sat").decimals)
    with pytest.raises(InvalidAccountKey):
        Asset("btc", 8, "sat")


@pytest.mark.parametrize("amount", [0, -1, True, False, 1.0, 2**63, 2**64, 2**70, "5", None])
def test_bad_amounts_are_refused(amount: object) -> None:
    """Zero, negative, bool, float, non-int and beyond-63-bit amounts raise InvalidAmount."""
    with pytest.raises(InvalidAmount):
        Posting(HOT, Side.DEBIT, amount)  # type: ignore[arg-type]


def test_largest_amount_is_accepted() -> None:
    """2**63 - 1 minor units is the largest posting."""
    check_transfer(transfer(Kind.DEPOSIT, debit(HOT, AMOUNT_MAX), credit(ALICE, AMOUNT_MAX)), ASSETS)


def test_amount_smuggled_past_the_constructor_is_refused() -> None:
    """An amount set after construction is caught again when the transfer is checked."""
    posting = debit(HOT, 5)
    object.__setattr__(posting, "amount", 0)
    with pytest.raises(InvalidAmount):
        check_transfer(transfer(Kind.DEPOSIT, posting, credit(ALICE, 5)), ASSETS)


def test_unbalanced_transfer_is_refused() -> None:
    """Debits that differ from credits raise UnbalancedTransfer with both totals."""
    with pytest.raises(UnbalancedTransfer) as info:
        check_transfer(transfer(Kind.DEPOSIT, debit(HOT, 10), credit(ALICE, 9)), ASSETS)
    assert (10, 9) == (info.value.debit_total, info.value.credit_total)


def test_mixed_assets_are_refused() -> None:
    """One transfer moves one asset."""
    with pytest.raises(MixedAssets):
        check_transfer(transfer(Kind.DEPOSIT, debit(HOT, 10), credit(AccountKey.available("alice", "ETH"), 10)),
                       ASSETS)


def test_unknown_asset_is_refused() -> None:
    """An asset the ledger is not configured for raises UnknownAsset."""
    doge = AccountKey.custody("hot", "DOGE")
    with pytest.raises(UnknownAsset):
        check_transfer(transfer(Kind.DEPOSIT, debit(doge, 1), credit(AccountKey.available("a", "DOGE"), 1)), ASSETS)


@pytest.mark.parametrize("bad", [
    dict(key=""), dict(key="a b"), dict(key="x" * 129),
])
def test_bad_idempotency_keys_are_refused(bad: dict[str, str]) -> None:
    """Empty, spaced or over-long idempotency keys raise InvalidTransfer."""
    with pytest.raises(InvalidTransfer):
        check_transfer(transfer(Kind.DEPOSIT, debit(HOT, 1), credit(ALICE, 1), key=bad["key"]), ASSETS)


def test_naive_time_and_single_posting_are_refused() -> None:
    """A timestamp without a zone, or a transfer with one posting, raises InvalidTransfer."""
    with pytest.raises(InvalidTransfer):
        check_transfer(Transfer("k", Kind.DEPOSIT, (debit(HOT, 1), credit(ALICE, 1)), datetime(2026, 1, 1)), ASSETS)
    with pytest.raises(InvalidTransfer):
        check_transfer(transfer(Kind.DEPOSIT, debit(HOT, 1)), ASSETS)


def test_float_metadata_is_refused() -> None:
    """Metadata must be canonical JSON data: a float raises InvalidTransfer at construction."""
    with pytest.raises(InvalidTransfer):
        transfer(Kind.DEPOSIT, debit(HOT, 1), credit(ALICE, 1), price=1.5)


def test_metadata_is_a_snapshot() -> None:
    """Changing the caller's dict after construction changes neither the metadata nor the digest."""
    data: dict[str, object] = {"txid": "ab", "tags": ["a"]}
    t = Transfer("k", Kind.DEPOSIT, (debit(HOT, 1), credit(ALICE, 1)), T0, data)
    before = transfer_digest(t)
    data["txid"] = "cd"
    assert "ab" == t.metadata["txid"]
    assert before == transfer_digest(t)


ALLOWED = [
    (Kind.DEPOSIT, (debit(HOT, 5), credit(ALICE, 5))),
    (Kind.DEPOSIT, (debit(HOT, 5), credit(WORLD, 5))),
    (Kind.WITHDRAWAL_HOLD, (debit(ALICE, 5), credit(ALICE_HELD, 5))),
    (Kind.WITHDRAWAL_RELEASE, (debit(ALICE_HELD, 5), credit(ALICE, 5))),
    (Kind.WITHDRAWAL_SETTLE, (debit(ALICE_HELD, 5), credit(HOT, 5))),
    (Kind.FEE, (debit(ALICE, 5), credit(FEES, 5))),
    (Kind.FEE, (debit(ALICE_HELD, 5), credit(FEES, 5))),
    (Kind.FEE_REBATE, (debit(FEES, 5), credit(ALICE, 5))),
    (Kind.PNL, (debit(ALICE, 5), credit(BOB, 5))),
    (Kind.PNL, (debit(INSURANCE, 5), credit(BOB, 5))),
    (Kind.PNL, (debit(ALICE, 5), credit(INSURANCE, 5))),
    (Kind.REFILL, (debit(HOT, 5), credit(COLD, 5))),
    (Kind.SWEEP, (debit(COLD, 5), credit(HOT, 5))),
    (Kind.NETWORK_FEE, (debit(OPERATING, 5), credit(HOT, 5))),
    (Kind.COMPANY_DEPOSIT, (debit(COLD, 5), credit(OPERATING, 5))),
    (Kind.COMPANY_WITHDRAWAL, (debit(OPERATING, 5), credit(COLD, 5))),
    (Kind.COMPANY_TRANSFER, (debit(OPERATING, 5), credit(INSURANCE, 5))),
]


@pytest.mark.parametrize(("kind", "postings"), ALLOWED, ids=[f"{k}-{i}" for i, (k, _) in enumerate(ALLOWED)])
def test_ring_fence_allows_what_each_kind_may_do(kind: Kind, postings: tuple[Posting, ...]) -> None:
    """Each kind may move value along the paths its rule names."""
    check_ring_fence(kind, postings)


FORBIDDEN = [
    (Kind.WITHDRAWAL_SETTLE, (debit(ALICE_HELD, 5), credit(FEES, 5))),   # client -> company by settle
    (Kind.WITHDRAWAL_HOLD, (debit(ALICE, 5), credit(OPERATING, 5))),     # client -> company by hold
    (Kind.DEPOSIT, (debit(ALICE, 5), credit(INSURANCE, 5))),             # client -> company by deposit
    (Kind.PNL, (debit(ALICE, 5), credit(FEES, 5))),                      # pnl only against insurance
    (Kind.PNL, (debit(ALICE, 5), credit(OPERATING, 5))),
    (Kind.FEE, (debit(ALICE, 5), credit(OPERATING, 5))),                 # fees go to the fees account
    (Kind.FEE, (debit(ALICE, 5), credit(BOB, 5))),
    (Kind.REFILL, (debit(HOT, 5), credit(ALICE, 5))),
    (Kind.SWEEP, (debit(ALICE, 5), credit(COLD, 5))),
    (Kind.COMPANY_TRANSFER, (debit(ALICE, 5), credit(OPERATING, 5))),
    (Kind.COMPANY_WITHDRAWAL, (debit(ALICE, 5), credit(COLD, 5))),
    (Kind.NETWORK_FEE, (debit(ALICE, 5), credit(HOT, 5))),
    (Kind.WITHDRAWAL_HOLD, (debit(ALICE, 5), credit(AccountKey.held("bob", "BTC"), 5))),  # across clients
    (Kind.FEE_REBATE, (debit(ALICE, 5), credit(BOB, 5))),
]


@pytest.mark.parametrize(("kind", "postings"), FORBIDDEN, ids=[f"{k}-{i}" for i, (k, _) in enumerate(FORBIDDEN)])
def test_ring_fence_refuses_forbidden_moves(kind: Kind, postings: tuple[Posting, ...]) -> None:
    """Client value never reaches a company account except by fee or pnl (insurance fund)."""
    with pytest.raises(RingFenceViolation) as info:
        check_ring_fence(kind, postings)
    assert isinstance(info.value, Refused)


def test_adjustment_needs_a_reason() -> None:
    """An adjustment without a reason raises RingFenceViolation."""
    with pytest.raises(RingFenceViolation):
        check_ring_fence(Kind.ADJUSTMENT, (debit(WORLD, 5), credit(HOT, 5)), reason="  ")
    check_ring_fence(Kind.ADJUSTMENT, (debit(WORLD, 5), credit(HOT, 5)), reason="dust lost on chain")


def test_adjustment_cannot_move_client_value_to_the_company() -> None:
    """Even with a reason, an adjustment may not debit a client and credit the company."""
    with pytest.raises(RingFenceViolation):
        check_ring_fence(Kind.ADJUSTMENT, (debit(ALICE, 5), credit(OPERATING, 5)), reason="because")


def test_digest_is_canonical_json_of_the_content() -> None:
    """The digest is SHA-256 over the canonical JSON of key, kind, postings, metadata and reason."""
    t = transfer(Kind.DEPOSIT, debit(HOT, 7), credit(ALICE, 7), txid="ab", vout=1)
    body = {"key": "k1", "kind": "deposit", "metadata": {"txid": "ab", "vout": 1},
            "postings": [[str(HOT), "D", 7], [str(ALICE), "C", 7]], "reason": ""}
    assert hashlib.sha256(b"coffer/ledger/transfer/v1\x00" + canonical_json(body)).hexdigest() == transfer_digest(t)


def test_digest_ignores_time_but_not_content() -> None:
    """A later retry with the same content has the same digest; another amount does not."""
    a = transfer(Kind.DEPOSIT, debit(HOT, 7), credit(ALICE, 7))
    later = Transfer(a.idempotency_key, a.kind, a.postings, T0 + timedelta(hours=1))
    other = transfer(Kind.DEPOSIT, debit(HOT, 8), credit(ALICE, 8))
    assert transfer_digest(a) == transfer_digest(later)
    assert transfer_digest(a) != transfer_digest(other)


def test_apply_transfers_moves_balances_in_normal_orientation() -> None:
    """A deposit raises both custody (debit-normal) and the client (credit-normal)."""
    result = apply_transfers({}, [transfer(Kind.DEPOSIT, debit(HOT, 100), credit(ALICE, 100)),
                                  transfer(Kind.WITHDRAWAL_HOLD, debit(ALICE, 30), credit(ALICE_HELD, 30))])
    assert {HOT: 100, ALICE: 70, ALICE_HELD: 30} == result


def test_apply_transfers_refuses_a_negative_client_balance() -> None:
    """The transfer that would take a client below zero is named by index; input is untouched."""
    balances = {ALICE: 50}
    holds = [transfer(Kind.WITHDRAWAL_HOLD, debit(ALICE, 30), credit(ALICE_HELD, 30), key=f"h{i}") for i in range(2)]
    with pytest.raises(InsufficientFunds) as info:
        apply_transfers(balances, holds)
    assert 1 == info.value.index
    assert {ALICE: 50} == balances


def test_house_accounts_may_go_negative() -> None:
    """Only client balances are bounded below: the world account may run negative."""
    result = apply_transfers({}, [transfer(Kind.ADJUSTMENT, debit(WORLD, 5), credit(HOT, 5), reason="loss")])
    assert -5 == result[WORLD]


def test_balance_beyond_range_is_an_invariant_violation() -> None:
    """A balance beyond 38 digits cannot happen by input; it is a broken invariant."""
    with pytest.raises(InvariantViolation):
        apply_transfers({HOT: 10**38 - 1}, [transfer(Kind.DEPOSIT, debit(HOT, 1), credit(ALICE, 1))])
