"""The governance quorum: k pinned administrators sign every lifecycle change; nothing else counts."""

from __future__ import annotations

import json
from pathlib import Path

import nacl.signing
import pytest

from coffer.keyholder.administrators import (
    AdminKey,
    describe,
    load_admin,
    make_admin,
    read_action,
    sign_file,
    write_action,
)
from coffer.keyholder.governance import (
    ActionKind,
    GovernancePins,
    GovernanceRefused,
    SignedAction,
    apply,
    require,
    verify,
)
from coffer.keyholder.governance_store import GovernanceStore
from coffer.testing.governance import Quorum

NOW = 1_800_000_000


def _retire(quorum: Quorum, **kwargs: object) -> SignedAction:
    return quorum.action(ActionKind.KEY_RETIRE, key_id="hot", keyholders=["cosigner-1"], content={}, now_s=NOW,
                         **kwargs)  # type: ignore[arg-type]


def _rule(signed: SignedAction, pins: GovernancePins, used: frozenset[str] = frozenset()) -> str:
    with pytest.raises(GovernanceRefused) as caught:
        verify(signed, pins, now_s=NOW, used=used)
    return caught.value.rule


def test_quorum_of_pinned_administrators_verifies() -> None:
    """Two of three pinned administrators over the exact action verify."""
    quorum = Quorum.generate()
    verify(_retire(quorum), quorum.pins(), now_s=NOW)


def test_one_signature_is_short_of_the_quorum() -> None:
    """One administrator alone is refused with governance.quorum."""
    quorum = Quorum.generate()
    assert "governance.quorum" == _rule(_retire(quorum, signers=quorum.admins[:1]), quorum.pins())


def test_changed_content_breaks_every_signature() -> None:
    """Content changed after signing is refused with governance.bad_signature."""
    quorum = Quorum.generate()
    signed = _retire(quorum)
    data = signed.to_json()
    data["action"]["scope"]["keyholders"] = ["cosigner-1", "cosigner-9"]
    assert "governance.bad_signature" == _rule(SignedAction.from_json(data), quorum.pins())


def test_applied_action_is_a_replay() -> None:
    """An action whose digest the key holder recorded is refused with governance.replay."""
    quorum = Quorum.generate()
    signed = _retire(quorum)
    assert "governance.replay" == _rule(signed, quorum.pins(), frozenset({signed.action.digest().hex()}))


def test_administrator_not_pinned_is_unknown() -> None:
    """A signature by a key the key holder never pinned is refused with governance.unknown_admin."""
    quorum = Quorum.generate()
    stranger = AdminKey("admin-9", nacl.signing.SigningKey.generate())
    signed = _retire(quorum, signers=[quorum.admins[0], stranger])
    assert "governance.unknown_admin" == _rule(signed, quorum.pins())


def test_same_administrator_twice_is_refused() -> None:
    """One administrator's signature listed twice is refused with governance.duplicate_admin."""
    quorum = Quorum.generate()
    signed = _retire(quorum, signers=quorum.admins[:1])
    doubled = SignedAction(signed.action, signed.signatures * 2)
    assert "governance.duplicate_admin" == _rule(doubled, quorum.pins())


def test_other_domain_and_expired_actions_are_refused() -> None:
    """An action for another deployment or past its time is refused, naming the rule."""
    quorum = Quorum.generate()
    other = Quorum(quorum.admins, domain="elsewhere")
    assert "governance.domain" == _rule(_retire(other), quorum.pins())
    stale = quorum.action(ActionKind.KEY_RETIRE, key_id="hot", keyholders=["cosigner-1"], content={},
                          now_s=NOW - 30 * 24 * 3600)
    assert "governance.expired" == _rule(stale, quorum.pins())


def test_scope_names_the_key_and_the_key_holder() -> None:
    """An action used for another key, another key holder or another kind is refused."""
    action = _retire(Quorum.generate()).action
    require(action, ActionKind.KEY_RETIRE, keyholder="cosigner-1", key_id="hot")
    for kind, keyholder, key_id, rule in ((ActionKind.KEY_RETIRE, "cosigner-1", "cold", "governance.scope"),
                                          (ActionKind.KEY_RETIRE, "cosigner-2", "hot", "governance.scope"),
                                          (ActionKind.DKG, "cosigner-1", "hot", "governance.kind")):
        with pytest.raises(GovernanceRefused) as caught:
            require(action, kind, keyholder=keyholder, key_id=key_id)
        assert rule == caught.value.rule


def test_revoked_administrator_no_longer_counts() -> None:
    """After a quorum revokes an administrator, a quorum including them is governance.revoked_admin."""
    quorum = Quorum.generate()
    revoke = quorum.action(ActionKind.ADMINISTRATOR_REVOKE, key_id=None, keyholders=["cosigner-1"],
                           content={"admin_id": "admin-1", "threshold": 2}, now_s=NOW)
    verify(revoke, quorum.pins(), now_s=NOW)
    after = apply(quorum.pins(), revoke.action)
    assert ["admin-2", "admin-3"] == [a.admin_id for a in after.administrators]
    assert "governance.revoked_admin" == _rule(_retire(quorum, signers=quorum.admins[:2]), after)
    verify(_retire(quorum, signers=quorum.admins[1:]), after, now_s=NOW)


def test_officer_set_changes_only_by_action() -> None:
    """An officer enrolled by a verified action is pinned; the quorum must stay at least 2."""
    quorum = Quorum.generate()
    key = nacl.signing.SigningKey.generate()
    enrol = quorum.action(ActionKind.OFFICER_ENROL, key_id=None, keyholders=["signer-1"],
                          content={"officer_id": "officer-9", "public_key": bytes(key.verify_key).hex(),
                                   "quorum": 2}, now_s=NOW)
    assert bytes(key.verify_key) == apply(quorum.pins(), enrol.action).officer_keys()["officer-9"]
    weak = quorum.action(ActionKind.OFFICER_ENROL, key_id=None, keyholders=["signer-1"],
                         content={"officer_id": "officer-9", "public_key": bytes(key.verify_key).hex(),
                                  "quorum": 1}, now_s=NOW)
    with pytest.raises(GovernanceRefused) as caught:
        apply(quorum.pins(), weak.action)
    assert "governance.threshold" == caught.value.rule


def test_administrator_threshold_at_least_two() -> None:
    """Pins with a 1-of-n administrator threshold are refused with governance.threshold."""
    quorum = Quorum.generate(threshold=1)
    with pytest.raises(GovernanceRefused) as caught:
        quorum.pins()
    assert "governance.threshold" == caught.value.rule


def test_signed_action_round_trips_and_refuses_unknown_fields() -> None:
    """A signed action parses back to itself; an extra field is governance.malformed."""
    signed = _retire(Quorum.generate())
    assert signed == SignedAction.decode(signed.encode())
    data = json.loads(signed.encode())
    data["action"]["extra"] = 1
    with pytest.raises(GovernanceRefused) as caught:
        SignedAction.from_json(data)
    assert "governance.malformed" == caught.value.rule


def test_store_applies_once_and_changes_pins(tmp_path: Path) -> None:
    """The key holder's record applies an action once, then refuses it as a replay."""
    quorum = Quorum.generate()
    quorum.provision(tmp_path)
    store = GovernanceStore.open(tmp_path)
    revoke = quorum.action(ActionKind.ADMINISTRATOR_REVOKE, key_id=None, keyholders=["cosigner-1"],
                           content={"admin_id": "admin-3", "threshold": 2}, now_s=NOW)
    store.accept(revoke, ActionKind.ADMINISTRATOR_REVOKE, keyholder="cosigner-1", key_id=None, now_s=NOW - 10)
    assert ["admin-1", "admin-2"] == [a.admin_id for a in store.pins().administrators]
    with pytest.raises(GovernanceRefused) as caught:
        store.accept(revoke, ActionKind.ADMINISTRATOR_REVOKE, keyholder="cosigner-1", key_id=None, now_s=NOW - 10)
    assert "governance.replay" == caught.value.rule
    store.close()


def test_refused_check_records_nothing(tmp_path: Path) -> None:
    """When the caller's check refuses, the action is not recorded and can still be used."""
    quorum = Quorum.generate()
    quorum.provision(tmp_path)
    store = GovernanceStore.open(tmp_path)
    signed = _retire(quorum)

    def refuse(_action: object) -> None:
        raise GovernanceRefused("no", rule="governance.content")

    with pytest.raises(GovernanceRefused):
        store.accept(signed, ActionKind.KEY_RETIRE, keyholder="cosigner-1", key_id="hot", now_s=NOW, check=refuse)
    store.accept(signed, ActionKind.KEY_RETIRE, keyholder="cosigner-1", key_id="hot", now_s=NOW)
    store.close()


def test_administrator_signs_a_file_with_their_own_key(tmp_path: Path) -> None:
    """Two administrators sign one action file from their own directories; it verifies."""
    admins = [make_admin(tmp_path / f"admin-{i}", f"admin-{i}") for i in (1, 2, 3)]
    assert 0o600 == (tmp_path / "admin-1" / "admin.key").stat().st_mode & 0o777
    quorum = Quorum(admins, officers=Quorum.generate().officers)
    path = write_action(tmp_path / "action.json", quorum.action(
        ActionKind.KEY_RETIRE, key_id="hot", keyholders=["cosigner-1"], content={}, signers=[], now_s=NOW))
    for directory in ("admin-1", "admin-3"):
        sign_file(path, load_admin(tmp_path / directory))
    verify(read_action(path), quorum.pins(), now_s=NOW)
    assert "signed by:   admin-1, admin-3" in describe(read_action(path))
