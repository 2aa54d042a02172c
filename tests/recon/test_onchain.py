"""The on-chain check: custody equals chain holdings, differences only as listed; liabilities covered."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coffer.recon import (
    CustodyScript,
    Holding,
    HoldingColumns,
    InflightWithdrawal,
    InvalidCheckInput,
    OnchainCheckInput,
    PendingDeposit,
    check_onchain,
    holding_columns,
)

SCRIPTS = [CustodyScript("BTC", "cold", "0014aa"), CustodyScript("BTC", "cold", "0014bb"),
           CustodyScript("BTC", "hot", "5120cc"), CustodyScript("ETH", "hot", "0xabc")]


def make(holdings: list[Holding], ledger: dict[tuple[str, str], int], liabilities: dict[str, int],
         pending: tuple[PendingDeposit, ...] = (), inflight: tuple[InflightWithdrawal, ...] = ()) -> OnchainCheckInput:
    return OnchainCheckInput({"BTC": 120, "ETH": 55}, SCRIPTS, holding_columns(SCRIPTS, holdings), ledger,
                             liabilities, pending, inflight)


def test_matching_custody_passes() -> None:
    """Ledger custody equal to the chain per wallet, liabilities covered: ok, every line reported."""
    data = make([Holding("0014aa", 70), Holding("0014bb", 30), Holding("5120cc", 5), Holding("0xabc", 9)],
                {("BTC", "cold"): 100, ("BTC", "hot"): 5, ("ETH", "hot"): 9}, {"BTC": 105, "ETH": 9})
    result = check_onchain(data)
    assert result.ok
    assert [("BTC", "cold", 100, 2), ("BTC", "hot", 5, 1), ("ETH", "hot", 9, 1)] == [
        (w.asset, w.wallet, w.chain_holdings, w.scripts) for w in result.wallets]
    assert 120 == result.wallets[0].height


def test_pending_deposit_and_inflight_withdrawal_explain_differences() -> None:
    """A pending deposit (on chain, not credited) and an in-flight withdrawal (debited, unconfirmed) balance out."""
    data = make([Holding("0014aa", 100), Holding("0014bb", 7), Holding("0xabc", 9)],
                {("BTC", "cold"): 90, ("ETH", "hot"): 9}, {"BTC": 90},
                pending=(PendingDeposit("BTC", "cold", "0014bb", "tx1:0", 7),),
                inflight=(InflightWithdrawal("BTC", "cold", "tx2", 10),))
    result = check_onchain(data)
    assert result.ok
    assert (7, 10, 0) == (result.wallets[0].pending_deposits, result.wallets[0].inflight_withdrawals,
                          result.wallets[0].difference)
    assert 90 == result.assets[0].backing


def test_missing_coins_are_a_mismatch() -> None:
    """Less on chain than the ledger says is a custody mismatch naming the wallet."""
    data = make([Holding("0014aa", 99)], {("BTC", "cold"): 100}, {"BTC": 0})
    result = check_onchain(data)
    assert not result.ok
    assert ("custody_balance", "BTC/cold", 100, 99) == (result.mismatches[0].kind, result.mismatches[0].subject,
                                                        result.mismatches[0].expected, result.mismatches[0].actual)


def test_liabilities_above_custody_is_a_mismatch() -> None:
    """Client liabilities above what backs them is a mismatch even when custody lines agree."""
    data = make([Holding("0014aa", 100)], {("BTC", "cold"): 100}, {"BTC": 101})
    assert ["liabilities_exceed_custody"] == [m.kind for m in check_onchain(data).mismatches]


def test_wei_amounts_beyond_64_bits_are_exact() -> None:
    """Amounts beyond 64 bits (wei) take the exact path and still compare exactly."""
    big = 10**24 + 1
    data = make([Holding("0xabc", big)], {("ETH", "hot"): big}, {"ETH": big})
    assert data.holdings.amount is None
    assert check_onchain(data).ok


def test_holding_outside_custody_refused() -> None:
    """A holding on a script that is not a custody script is refused."""
    with pytest.raises(InvalidCheckInput):
        holding_columns(SCRIPTS, [Holding("0014ff", 1)])


def test_pending_deposit_on_foreign_script_refused() -> None:
    """A pending deposit must sit on a custody script of its wallet."""
    with pytest.raises(InvalidCheckInput):
        check_onchain(make([], {}, {}, pending=(PendingDeposit("BTC", "hot", "0014aa", "t", 1),)))


def test_negative_amount_refused() -> None:
    """A negative holding is refused."""
    with pytest.raises(InvalidCheckInput):
        holding_columns(SCRIPTS, [Holding("0014aa", -1)])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([s.script for s in SCRIPTS]), st.integers(0, 10**12)), max_size=40),
       st.integers(-3, 3))
def test_fast_and_exact_paths_agree(holdings: list[tuple[str, int]], skew: int) -> None:
    """The int64 path and the exact Python-integer path give the same lines for the same holdings."""
    items = [Holding(script, amount) for script, amount in holdings]
    ledger: dict[tuple[str, str], int] = {}
    for script, amount in holdings:
        owner = next(s for s in SCRIPTS if s.script == script)
        ledger[(owner.asset, owner.wallet)] = ledger.get((owner.asset, owner.wallet), 0) + amount
    if ledger:
        first = sorted(ledger)[0]
        ledger[first] = max(0, ledger[first] + skew)
    fast = make(items, ledger, {})
    exact = OnchainCheckInput(fast.heights, SCRIPTS, HoldingColumns(fast.holdings.script_index, None,
                                                                    tuple(h.amount for h in items)), ledger, {})
    assert check_onchain(fast) == check_onchain(exact)
