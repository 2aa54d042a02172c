"""A compromised coordinator against real FROST co-signer processes: the attacker holds the
coordinator's whole home (its database, its HSM with the attestation and halt-notice keys, its TLS
client key, the CA key) and talks to the co-signers directly. It holds no administrator and no
officer key. Each test tries an attack, shows the co-signers refuse it naming the rule and that
nothing was dealt, then performs the legitimate version (signed by the real quorum) and shows it
succeeds, so a co-signer that refuses everything fails this suite."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nacl.signing
import pytest
import sqlalchemy as sa
from nacl.signing import VerifyKey

from coffer.canonical import canonical_json
from coffer.keyholder.administrators import AdminKey
from coffer.keyholder.governance import ActionKind, SignedAction
from coffer.keyholder.lifecycle import refresh_content, reshare_content
from coffer.mpc.service import CosignerRefused
from coffer.mpc.service.cosigner import SUITES
from coffer.mpc.service.harness import Cluster, start_cluster
from coffer.recon.halt import HaltSwitch, OfficerSignature, resume_message
from coffer.recon.notice import NoticeIssuer
from coffer.recon.tables import halt_state
from coffer.recon.tables import officers as officer_table
from coffer.testing import wait_until

COSIGNERS = (1, 2, 3)
STATEMENT = b"coffer-por-statement/1\n" + canonical_json({"asset": "BTC", "height": 7, "solvent": True})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = start_cluster(Path(tmp_path_factory.mktemp("adversary-home")), COSIGNERS)
    try:
        yield started
    finally:
        started.stop()


def _refusals(cluster: Cluster, path: str, body: dict[str, Any]) -> dict[int, str]:
    """Send `body` to every co-signer as the attacker; the rule each one refuses with."""
    rules = {}
    for cosigner in COSIGNERS:
        with pytest.raises(CosignerRefused) as caught:
            cluster.client(cosigner).call(path, body)
        rules[cosigner] = caught.value.rule
    return rules


def _versions(cluster: Cluster, key_id: str) -> dict[int, int]:
    """The active version of `key_id` each co-signer reports (nothing dealt: unchanged)."""
    out = {}
    for cosigner in COSIGNERS:
        keys = cluster.client(cosigner).call("/v1/status", {})["keys"]
        out[cosigner] = max((k["version"] for k in keys if k["key_id"] == key_id and k["status"] == "active"),
                            default=0)
    return out


def _holders(cluster: Cluster, key_id: str) -> list[tuple[int, bytes]]:
    return [(m.identifier, m.hostpubkey) for m in cluster.mpc.key(key_id).members]


def _attacker_hostkeys(count: int) -> list[bytes]:
    return [SUITES["taproot"].dkg.hostpubkey_gen(secrets.token_bytes(32)) for _ in range(count)]


def test_reshare_to_attacker_host_keys_at_threshold_one_is_refused(cluster: Cluster) -> None:
    """Attack 1 (issue 16): re-share a FROST key to attacker host keys at threshold 1; every co-signer
    refuses (no action, or one the administrators never signed) and deals nothing; the quorum's
    re-share works."""
    cluster.mpc.dkg("a1", "taproot", 2)
    holders = _holders(cluster, "a1")
    attacker = [(identifier, key) for (identifier, _), key in zip(holders, _attacker_hostkeys(3), strict=True)]
    body = {"session": secrets.token_hex(32), "key_id": "a1", "version": 1,
            "dealers": [{"identifier": i, "hostpubkey": k.hex()} for i, k in holders[:2]], "new_threshold": 1,
            "new_holders": [{"identifier": i, "hostpubkey": k.hex()} for i, k in attacker], "deal": True}
    assert {c: "governance.missing" for c in COSIGNERS} == _refusals(cluster, "/v1/reshare/deal", body)
    content = reshare_content(holders[:2], attacker, 1, [], minority_threshold=True)
    forged = cluster.quorum.impostors().approve(ActionKind.RESHARE, "a1", [f"cosigner-{c}" for c in COSIGNERS],
                                             content)
    assert {c: "governance.unknown_admin" for c in COSIGNERS} == _refusals(
        cluster, "/v1/reshare/deal", {**body, "action": forged.to_json()})
    real = cluster.quorum.approve(ActionKind.RESHARE, "a1", [f"cosigner-{c}" for c in COSIGNERS], content)
    assert {c: "governance.threshold" for c in COSIGNERS} == _refusals(
        cluster, "/v1/reshare/deal", {**body, "action": real.to_json()})  # threshold 1: never, signed or not
    assert {1: 1, 2: 1, 3: 1} == _versions(cluster, "a1")
    assert 2 == cluster.mpc.reshare("a1", revoke=[3]).version  # the legitimate re-share, by the quorum
    assert {1: 2, 2: 2, 3: 1} == _versions(cluster, "a1")


def test_dkg_taken_over_by_simulated_participants_is_refused(cluster: Cluster) -> None:
    """Attack 2 (issue 16): a DKG naming one real co-signer and host keys the attacker simulates is
    refused by that co-signer (no action; forged administrators; a real action for other host
    keys); the quorum's DKG of the same key then works."""
    real_host = bytes.fromhex(cluster.client(1).call("/v1/hostkey", {"suite": "taproot"})["hostpubkey"])
    hostpubkeys = [real_host, *_attacker_hostkeys(2)]
    body = {"dkg_session": secrets.token_hex(32), "key_id": "a2", "suite": "taproot", "threshold": 2,
            "hostpubkeys": [h.hex() for h in hostpubkeys]}
    members = {"suite": "taproot", "threshold": 2, "members": [
        {"keyholder": f"cosigner-{i + 1}", "hostpubkey": h.hex()} for i, h in enumerate(hostpubkeys)]}
    keyholders = [f"cosigner-{c}" for c in COSIGNERS]
    attempts = {
        "governance.missing": body,
        "governance.unknown_admin": {**body, "action": cluster.quorum.impostors().approve(
            ActionKind.DKG, "a2", keyholders, members).to_json()},
    }
    genuine_hosts = [real_host, *[bytes.fromhex(cluster.client(c).call("/v1/hostkey", {"suite": "taproot"})
                                                ["hostpubkey"]) for c in (2, 3)]]
    genuine = cluster.quorum.approve(ActionKind.DKG, "a2", keyholders, {**members, "members": [
        {"keyholder": f"cosigner-{i + 1}", "hostpubkey": h.hex()} for i, h in enumerate(genuine_hosts)]})
    attempts["governance.host_keys"] = {**body, "action": genuine.to_json()}
    for rule, attempt in attempts.items():
        with pytest.raises(CosignerRefused) as caught:
            cluster.client(1).call("/v1/dkg/step1", {**attempt, "dkg_session": secrets.token_hex(32)})
        assert rule == caught.value.rule
    assert {1: 0, 2: 0, 3: 0} == _versions(cluster, "a2")
    key = cluster.mpc.dkg("a2", "taproot", 2, action=genuine)  # the very action the attacker tried to reuse
    assert [h.hex() for h in genuine_hosts] == [m.hostpubkey.hex() for m in key.members]


def test_threshold_one_is_refused_even_with_a_quorum(cluster: Cluster) -> None:
    """Attack 3 (issue 16): a 1-of-3 DKG is refused by every co-signer even when the administrators
    signed it; the 2-of-3 DKG works."""
    hosts = [bytes.fromhex(cluster.client(c).call("/v1/hostkey", {"suite": "ed25519"})["hostpubkey"])
             for c in COSIGNERS]
    content = {"suite": "ed25519", "threshold": 1, "members": [
        {"keyholder": f"cosigner-{c}", "hostpubkey": h.hex()} for c, h in zip(COSIGNERS, hosts, strict=True)]}
    action = cluster.quorum.approve(ActionKind.DKG, "a3", [f"cosigner-{c}" for c in COSIGNERS], content)
    body = {"dkg_session": secrets.token_hex(32), "key_id": "a3", "suite": "ed25519", "threshold": 1,
            "hostpubkeys": [h.hex() for h in hosts], "action": action.to_json()}
    assert {c: "governance.threshold" for c in COSIGNERS} == _refusals(cluster, "/v1/dkg/step1", body)
    key = cluster.mpc.dkg("a3", "ed25519", 2)
    signature = cluster.mpc.sign_publication("a3", STATEMENT, cluster.attest_publication(STATEMENT), cosigners=[1, 3])
    VerifyKey(key.publication_public_key()).verify(STATEMENT, signature)


def test_replayed_governance_action_is_refused(cluster: Cluster) -> None:
    """A refresh action the co-signers already applied, carried again, is refused as
    governance.replay and deals nothing; a freshly signed refresh works."""
    cluster.mpc.dkg("a5", "taproot", 2)
    action = cluster.quorum.approve(ActionKind.REFRESH, "a5", [f"cosigner-{c}" for c in COSIGNERS],
                                    refresh_content(_holders(cluster, "a5")))
    assert 2 == cluster.mpc.refresh("a5", action=action).version
    body = {"session": secrets.token_hex(32), "key_id": "a5", "version": 2, "action": action.to_json(),
            "holders": [{"identifier": i, "hostpubkey": k.hex()} for i, k in _holders(cluster, "a5")]}
    assert {c: "governance.replay" for c in COSIGNERS} == _refusals(cluster, "/v1/refresh/deal", body)
    assert {1: 2, 2: 2, 3: 2} == _versions(cluster, "a5")
    assert 3 == cluster.mpc.refresh("a5").version


def test_action_for_another_key_is_refused(cluster: Cluster) -> None:
    """A refresh signed for one key, carried for another, is refused as governance.scope; the
    action used for its own key works."""
    cluster.mpc.dkg("a6", "taproot", 2)
    cluster.mpc.dkg("a6-other", "taproot", 2)
    action = cluster.quorum.approve(ActionKind.REFRESH, "a6", [f"cosigner-{c}" for c in COSIGNERS],
                                    refresh_content(_holders(cluster, "a6-other")))
    body = {"session": secrets.token_hex(32), "key_id": "a6-other", "version": 1, "action": action.to_json(),
            "holders": [{"identifier": i, "hostpubkey": k.hex()} for i, k in _holders(cluster, "a6-other")]}
    assert {c: "governance.scope" for c in COSIGNERS} == _refusals(cluster, "/v1/refresh/deal", body)
    assert {1: 1, 2: 1, 3: 1} == _versions(cluster, "a6-other")
    own = cluster.quorum.approve(ActionKind.REFRESH, "a6", [f"cosigner-{c}" for c in COSIGNERS],
                                 refresh_content(_holders(cluster, "a6")))
    assert 2 == cluster.mpc.refresh("a6", action=own).version


def _apply_everywhere(cluster: Cluster, signed: SignedAction) -> None:
    for cosigner in COSIGNERS:
        cluster.client(cosigner).call("/v1/governance/apply", {"action": signed.to_json()})


def test_quorum_including_a_revoked_administrator_is_refused(cluster: Cluster) -> None:
    """After the quorum revokes admin-1, a refresh signed by admin-1 and admin-2 is refused as
    governance.revoked_admin; admin-2 and admin-3 together still refresh the key."""
    cluster.mpc.dkg("a7", "taproot", 2)
    quorum = cluster.quorum
    revoke = quorum.action(ActionKind.ADMINISTRATOR_REVOKE, key_id=None, keyholders=[f"cosigner-{c}" for c in COSIGNERS],
                           content={"admin_id": "admin-1", "threshold": 2})
    _apply_everywhere(cluster, revoke)
    content = refresh_content(_holders(cluster, "a7"))
    stale = quorum.action(ActionKind.REFRESH, key_id="a7", keyholders=[f"cosigner-{c}" for c in COSIGNERS],
                          content=content, signers=quorum.admins[:2])
    body = {"session": secrets.token_hex(32), "key_id": "a7", "version": 1, "action": stale.to_json(),
            "holders": content["holders"]}
    assert {c: "governance.revoked_admin" for c in COSIGNERS} == _refusals(cluster, "/v1/refresh/deal", body)
    assert {1: 1, 2: 1, 3: 1} == _versions(cluster, "a7")
    quorum.admins = [*quorum.admins[1:], quorum.admins[0]]  # from now on the quorum is admin-2 and admin-3
    assert 2 == cluster.mpc.refresh("a7").version


def _halted_everywhere(cluster: Cluster) -> bool:
    return all(not cluster.client(c).call("/v1/status", {})["halt_clear"] for c in COSIGNERS)


def _clear_everywhere(cluster: Cluster) -> bool:
    return all(cluster.client(c).call("/v1/status", {})["halt_clear"] for c in COSIGNERS)


class CountingIssuer:
    """The coordinator's real notice issuer, counting how often the co-signers fetched a notice."""

    def __init__(self, inner: NoticeIssuer) -> None:
        self.inner = inner
        self.count = 0

    def issue(self) -> Any:
        self.count += 1
        return self.inner.issue()


def test_halt_is_lifted_only_by_the_pinned_officers(cluster: Cluster) -> None:
    """Attack 4 (issue 16): officers added to the coordinator's table without a governance action
    resume its halt switch, but every co-signer stays halted (rule halt) and signs nothing; an
    officer enrolled by a governance action and a pinned officer resume for real. Runs last: it
    leaves the co-signers halted."""
    switch = HaltSwitch(cluster.engine, quorum=2)
    with cluster.engine.begin() as conn:  # the real switch takes over the stand-in's notice sequence
        conn.execute(sa.update(halt_state).values(seq=10**6))
    issuer = CountingIssuer(NoticeIssuer(switch, lambda m: cluster.notices.key.sign(m).signature))
    cluster.notices.issuer = issuer
    cluster.mpc.dkg("a4", "ed25519", 2)
    newcomer = nacl.signing.SigningKey.generate()
    enrol = cluster.quorum.action(ActionKind.OFFICER_ENROL, key_id=None,
                                  keyholders=[f"cosigner-{c}" for c in COSIGNERS],
                                  content={"officer_id": "officer-9", "public_key": bytes(newcomer.verify_key).hex(),
                                           "quorum": 2})
    _apply_everywhere(cluster, enrol)
    # The legitimate path: a pinned officer and the enrolled one resume the first halt.
    real = {"officer-1": cluster.quorum.officers["officer-1"], "officer-9": newcomer}
    for officer_id, key in real.items():
        switch.register_officer(officer_id, bytes(key.verify_key))
    first = switch.trip("manual", {"by": "test"}, actor="officer:officer-1")
    wait_until(lambda: _halted_everywhere(cluster), timeout=30, what="co-signers see the halt")
    switch.resume(first.halt_id, "checked", [OfficerSignature(i, k.sign(resume_message(first.halt_id, "checked"))
                                                                .signature) for i, k in real.items()], actor="officers")
    wait_until(lambda: _clear_everywhere(cluster), timeout=30, what="co-signers resume")
    cluster.mpc.sign_publication("a4", STATEMENT, cluster.attest_publication(STATEMENT), cosigners=[1, 2])
    # The attack: two made-up officers as unsigned rows of the coordinator's table.
    second = switch.trip("manual", {"by": "test"}, actor="officer:officer-1")
    wait_until(lambda: _halted_everywhere(cluster), timeout=30, what="co-signers see the second halt")
    made_up = {f"mallory-{i}": nacl.signing.SigningKey.generate() for i in (1, 2)}
    with cluster.engine.begin() as conn:
        for officer_id, key in made_up.items():
            conn.execute(sa.insert(officer_table).values(officer_id=officer_id, public_key=bytes(key.verify_key).hex(),
                                                         registered_at="2026-12-07T00:00:00+00:00"))
    switch.resume(second.halt_id, "all fine", [OfficerSignature(i, k.sign(resume_message(second.halt_id, "all fine"))
                                                                .signature) for i, k in made_up.items()],
                  actor="attacker")
    assert not switch.is_halted()  # the coordinator itself is fooled
    fetched = issuer.count
    wait_until(lambda: issuer.count >= fetched + 3 * len(COSIGNERS), timeout=30, what="co-signers fetch notices")
    assert _halted_everywhere(cluster)
    with pytest.raises(CosignerRefused) as caught:
        cluster.mpc.sign_publication("a4", STATEMENT, cluster.attest_publication(STATEMENT), cosigners=[1, 2])
    assert "halt" == caught.value.rule


def test_forged_admin_key_cannot_enrol_an_officer(cluster: Cluster) -> None:
    """An officer enrolment signed by administrators the attacker made up is refused as
    governance.unknown_admin by every co-signer; the officer set stays as pinned."""
    key = nacl.signing.SigningKey.generate()
    forged = cluster.quorum.impostors().action(
        ActionKind.OFFICER_ENROL, key_id=None, keyholders=[f"cosigner-{c}" for c in COSIGNERS],
        content={"officer_id": "mallory", "public_key": bytes(key.verify_key).hex(), "quorum": 2})
    assert {c: "governance.unknown_admin" for c in COSIGNERS} == _refusals(
        cluster, "/v1/governance/apply", {"action": forged.to_json()})
    pinned_id = cluster.quorum.admins[1].admin_id
    stranger = AdminKey(pinned_id, nacl.signing.SigningKey.generate())  # a pinned id with another key
    spoofed = cluster.quorum.action(
        ActionKind.OFFICER_ENROL, key_id=None, keyholders=[f"cosigner-{c}" for c in COSIGNERS],
        content={"officer_id": "mallory", "public_key": bytes(key.verify_key).hex(), "quorum": 2},
        signers=[cluster.quorum.admins[0], stranger])
    assert {c: "governance.bad_signature" for c in COSIGNERS} == _refusals(
        cluster, "/v1/governance/apply", {"action": spoofed.to_json()})
