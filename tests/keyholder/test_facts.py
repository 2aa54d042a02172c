"""A key holder's own facts store and the time locks the policy derives from it (fake clock)."""

from __future__ import annotations

import datetime as dt

import pytest

from coffer.keyholder.facts import (
    AdminQuorum,
    ClientKeyNotice,
    FreezeNotice,
    KeyholderFacts,
    WhitelistNotice,
    parse_notices,
    sign_whitelist_entry,
)
from coffer.policy import DecisionContext, RequestKind, WithdrawalRequest
from coffer.policy.engine import compile_policy, default_policy, default_schema_text, with_time_locks
from coffer.policy.errors import FactRefused, MalformedDocument, MalformedPolicy
from coffer.policy.roles import OperatorKey, OperatorRegistry
from coffer.testing.facts import notices_body

DAY_S = 86_400
T0 = 1_790_000_000
QUORUM = AdminQuorum(OperatorRegistry(()), 2)
CLIENT = OperatorKey(b"\x31" * 32)


def _request() -> WithdrawalRequest:
    return WithdrawalRequest(RequestKind.CLIENT_WITHDRAWAL, "BTC", 500_000, "bcrt1qdest", "hot", "acct1", "normal",
                             "00" * 16, T0 + 10 * DAY_S, "client:acct1")


def _refusing(facts: KeyholderFacts, now_s: int) -> tuple[str, ...]:
    fact = facts.whitelist("acct1", "BTC", "bcrt1qdest")
    context = DecisionContext(halted=False, account_frozen=False,
                              whitelisted_at_s=None if fact is None else fact.first_seen_s, hot_balance_minor=10**9,
                              client_key_at_s=None if fact is None else fact.client_key_first_seen_s)
    return default_policy().decide(_request(), context, dt.datetime.fromtimestamp(now_s, dt.UTC)).refusing_rules


def test_unsigned_entry_waits_the_full_lock_from_first_sight() -> None:
    """An unsigned entry is time-locked for 24 h from the key holder's first sighting; a repeat changes nothing."""
    facts = KeyholderFacts(":memory:")
    facts.apply([WhitelistNotice("acct1", "BTC", "bcrt1qdest")], now_s=T0, quorum=QUORUM)
    facts.apply([WhitelistNotice("acct1", "BTC", "bcrt1qdest")], now_s=T0 + DAY_S, quorum=QUORUM)
    assert ("whitelist.time_lock",) == _refusing(facts, T0 + DAY_S - 1)
    assert () == _refusing(facts, T0 + DAY_S)


def test_entry_signed_by_a_pinned_client_key_waits_the_short_lock() -> None:
    """Signed by a client key pinned 24 h earlier: 1 h; signed by a key pinned just now: still 24 h."""
    facts = KeyholderFacts(":memory:")
    facts.apply([ClientKeyNotice("acct1", CLIENT.public_key)], now_s=T0 - DAY_S, quorum=QUORUM)
    facts.apply([sign_whitelist_entry(CLIENT, "acct1", "BTC", "bcrt1qdest")], now_s=T0, quorum=QUORUM)
    assert ("whitelist.time_lock",) == _refusing(facts, T0 + 3599)
    assert () == _refusing(facts, T0 + 3600)
    fresh = KeyholderFacts(":memory:")
    fresh.apply([ClientKeyNotice("acct1", CLIENT.public_key)], now_s=T0, quorum=QUORUM)
    fresh.apply([sign_whitelist_entry(CLIENT, "acct1", "BTC", "bcrt1qdest")], now_s=T0, quorum=QUORUM)
    assert ("whitelist.time_lock",) == _refusing(fresh, T0 + 3600)


def test_unfreeze_without_quorum_is_refused_and_the_freeze_stays() -> None:
    """An unfreeze with no administrator signature is refused (governance.quorum); the account stays frozen."""
    facts = KeyholderFacts(":memory:")
    facts.apply(parse_notices(notices_body([FreezeNotice("acct1")])), now_s=T0, quorum=QUORUM)
    unfreeze = b'{"notices":[{"account":"acct1","expires_at_s":%d,"kind":"unfreeze","nonce":"%s","signatures":[]}]}' % (
        T0 + 60, b"00" * 16)
    with pytest.raises(FactRefused) as refused:
        facts.apply(parse_notices(unfreeze), now_s=T0, quorum=QUORUM)
    assert "governance.quorum" == refused.value.rule
    assert facts.frozen("acct1")


def test_malformed_notices_are_refused() -> None:
    """Unknown kinds, extra fields, a time in a notice and bad keys are malformed documents."""
    for body in (b'{"notices":[{"kind":"thaw","account":"a"}]}',
                 b'{"notices":[{"account":"a","first_seen_s":1,"kind":"freeze"}]}',
                 b'{"notices":[{"account":"a","endorsed_by":null,"endorsement":null,"kind":"client_key",'
                 b'"public_key":"zz"}]}',
                 b'{"notices":[]}'):
        with pytest.raises(MalformedDocument):
            parse_notices(body)


def test_time_locks_are_set_only_in_order() -> None:
    """`with_time_locks` refuses a signed lock longer than the full one; the result compiles."""
    compile_policy(with_time_locks(default_policy().text, full_s=5, signed_s=1), default_schema_text())
    with pytest.raises(MalformedPolicy):
        with_time_locks(default_policy().text, full_s=1, signed_s=5)
