"""A co-signer's gate before a DKG, refresh or re-share: exactly what the administrators signed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coffer.keyholder.governance import ActionKind, GovernanceRefused
from coffer.keyholder.governance_store import GovernanceStore
from coffer.keyholder.lifecycle import KeyholderGovernance, dkg_content, refresh_content, reshare_content
from coffer.testing.governance import Quorum

HOSTS = [bytes([2]) + bytes([i]) * 32 for i in (1, 2, 3)]
HOLDERS = [(i + 1, h) for i, h in enumerate(HOSTS)]
KEYHOLDERS = ["cosigner-1", "cosigner-2", "cosigner-3"]
QUORUM = Quorum.generate()


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[KeyholderGovernance]:
    QUORUM.provision(tmp_path)
    store = GovernanceStore.open(tmp_path)
    yield KeyholderGovernance(store, "cosigner-1")
    store.close()


def _dkg(gate: KeyholderGovernance, threshold: int = 2) -> None:
    action = QUORUM.approve(ActionKind.DKG, "k", KEYHOLDERS, dkg_content("taproot", threshold,
                                                                       list(zip((1, 2, 3), HOSTS, strict=True))))
    gate.authorize_dkg(action.to_json(), key_id="k", suite="taproot", threshold=threshold, hostpubkeys=HOSTS,
                       own_hostpubkey=HOSTS[0])
    gate.pin_dkg("k", threshold, HOSTS)


def _rule(call: object) -> str:
    assert callable(call)
    with pytest.raises(GovernanceRefused) as caught:
        call()
    return caught.value.rule


def test_dkg_needs_an_action(gate: KeyholderGovernance) -> None:
    """A DKG without an action is governance.missing."""
    assert "governance.missing" == _rule(lambda: gate.authorize_dkg(
        None, key_id="k", suite="taproot", threshold=2, hostpubkeys=HOSTS, own_hostpubkey=HOSTS[0]))


def test_dkg_with_other_host_keys_is_refused(gate: KeyholderGovernance) -> None:
    """Host keys other than the signed ones, or this holder's key under another name, are governance.host_keys."""
    action = QUORUM.approve(ActionKind.DKG, "k", KEYHOLDERS, dkg_content("taproot", 2,
                                                                       list(zip((1, 2, 3), HOSTS, strict=True))))
    swapped = [HOSTS[0], HOSTS[2], HOSTS[1]]
    assert "governance.host_keys" == _rule(lambda: gate.authorize_dkg(
        action.to_json(), key_id="k", suite="taproot", threshold=2, hostpubkeys=swapped, own_hostpubkey=HOSTS[0]))
    assert "governance.host_keys" == _rule(lambda: gate.authorize_dkg(
        action.to_json(), key_id="k", suite="taproot", threshold=2, hostpubkeys=HOSTS, own_hostpubkey=HOSTS[1]))


def test_refresh_deals_only_to_the_pinned_holders(gate: KeyholderGovernance) -> None:
    """A refresh to unpinned holders is governance.host_keys; to a key never pinned, governance.unpinned_key."""
    _dkg(gate)
    stranger = [(1, HOSTS[0]), (2, HOSTS[1]), (3, bytes([2]) + bytes([9]) * 32)]
    action = QUORUM.approve(ActionKind.REFRESH, "k", KEYHOLDERS, refresh_content(stranger))
    assert "governance.host_keys" == _rule(lambda: gate.authorize_refresh(action.to_json(), key_id="k",
                                                                          holders=stranger))
    assert "governance.unpinned_key" == _rule(lambda: gate.authorize_refresh(action.to_json(), key_id="other",
                                                                             holders=HOLDERS))
    fine = QUORUM.approve(ActionKind.REFRESH, "k", KEYHOLDERS, refresh_content(HOLDERS))
    gate.authorize_refresh(fine.to_json(), key_id="k", holders=HOLDERS)


def test_reshare_keeps_a_majority_unless_the_action_says_otherwise(gate: KeyholderGovernance) -> None:
    """2-of-4 is governance.threshold unless the action sets minority_threshold; 1 never passes."""
    _dkg(gate)
    four = [*HOLDERS, (4, bytes([2]) + bytes([4]) * 32)]
    for minority, expected in ((False, "governance.threshold"), (True, None)):
        action = QUORUM.approve(ActionKind.RESHARE, "k", [*KEYHOLDERS, "cosigner-4"],
                                reshare_content(HOLDERS[:2], four, 2, [], minority_threshold=minority))

        def call(signed: object = action.to_json()) -> None:
            gate.authorize_reshare(signed, key_id="k", dealers=HOLDERS[:2], new_holders=four, new_threshold=2)

        if expected is None:
            call()
        else:
            assert expected == _rule(call)
    one = QUORUM.approve(ActionKind.RESHARE, "k", KEYHOLDERS,
                         reshare_content(HOLDERS[:2], HOLDERS[:2], 1, [3], minority_threshold=True))
    assert "governance.threshold" == _rule(lambda: gate.authorize_reshare(
        one.to_json(), key_id="k", dealers=HOLDERS[:2], new_holders=HOLDERS[:2], new_threshold=1))


def test_reshare_confirmation_must_revoke_what_the_action_says(gate: KeyholderGovernance) -> None:
    """Revocations other than the action's are governance.content; the action's pin the new holders."""
    _dkg(gate)
    action = QUORUM.approve(ActionKind.RESHARE, "k", KEYHOLDERS[:2],
                            reshare_content(HOLDERS[:2], HOLDERS[:2], 2, [3], minority_threshold=False))
    terms = gate.authorize_reshare(action.to_json(), key_id="k", dealers=HOLDERS[:2], new_holders=HOLDERS[:2],
                                   new_threshold=2)
    assert "governance.content" == _rule(lambda: gate.confirm_reshare("k", terms, [1]))
    gate.confirm_reshare("k", terms, [3])
    assert (2, dict(HOLDERS[:2])) == gate.pinned("k")
