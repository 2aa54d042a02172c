"""Threshold ECDSA co-signer processes under attack and failure: a cheating co-signer is named and
its OT setups discarded, fewer than t, a revoked co-signer, kill -9 between rounds, opaque digests,
replays, mismatched spends and a halt are all refused."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from coffer.eth import EthSpend
from coffer.mpc.ecdsa_service import SigningAborted
from coffer.mpc.ecdsa_service.harness import EcdsaCluster, start_ecdsa_cluster
from coffer.mpc.errors import InsufficientSigners
from coffer.mpc.service.client import CosignerClient
from coffer.mpc.service.errors import (
    CosignerRefused,
    CosignerRevoked,
    OpaqueMessageRefused,
    ProtocolViolation,
    SessionReplayed,
)
from coffer.mpc.service.server import cosigner_dir
from coffer.testing import wait_until

DESTINATION = "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"
VALUE_WEI = 10**16


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EcdsaCluster]:
    """Three ECDSA co-signer processes; each test makes its own 2-of-3 key."""
    cluster = start_ecdsa_cluster(tmp_path_factory.mktemp("ecdsa-service"))
    try:
        yield cluster
    finally:
        cluster.stop()


def _spend(nonce: int = 0, value_wei: int = VALUE_WEI) -> EthSpend:
    return EthSpend("withdrawal", 1337, nonce, 10**9, 3 * 10**9, 21_000, DESTINATION, value_wei)


def _approved(cluster: EcdsaCluster, value_wei: int = VALUE_WEI) -> list[tuple[Any, Any]]:
    request = cluster.request(DESTINATION, value_wei)
    return [(request, cluster.attest(request))]


def _client(cluster: EcdsaCluster, cosigner: int) -> CosignerClient:
    return CosignerClient(cosigner, cluster.ports[cosigner], cluster.tls, batching=False)


def _round1_body(key_id: str, signers: list[int], spend: EthSpend, approvals: list[tuple[Any, Any]],
                 nonce: bytes | None = None, version: int = 1) -> dict[str, Any]:
    return {"key_id": key_id, "version": version, "signers": signers, "nonce": (nonce or secrets.token_bytes(32)).hex(),
            "spend": spend.to_json(),
            "approvals": [{"request": r.to_json(), "decision": d.to_json()} for r, d in approvals]}


def _setups(cluster: EcdsaCluster, cosigner: int, key_id: str) -> dict[int, bool]:
    return {s["peer"]: s["usable"] for s in cluster.status(cosigner)["setups"] if s["key_id"] == key_id}


def test_cheating_co_signer_is_named_its_setups_discarded_and_a_fresh_pairing_signs(cluster: EcdsaCluster) -> None:
    """A co-signer corrupting its round-2 VOLE answer: abort naming it, OT setups discarded on the
    honest side, then (honest again) a fresh pairing and a signature."""
    coordinator = cluster.coordinator
    coordinator.create_key("cheat", 2)
    coordinator.sign_spend("cheat", _spend(0), _approved(cluster), signers=[1, 2])
    assert {2: True} == _setups(cluster, 1, "cheat")
    cluster.restart(2, module="tests.mpc.ecdsa_evil_cosigner")
    with pytest.raises(SigningAborted) as aborted:
        coordinator.sign_spend("cheat", _spend(1), _approved(cluster), signers=[1, 2])
    assert (2,) == aborted.value.culprits
    assert 1 == aborted.value.reporter
    assert "ecdsa.abort.MultiplicationCheckFailure" == aborted.value.rule
    assert {2: False} == _setups(cluster, 1, "cheat")
    assert "ecdsa.ot_setup_discarded" in cluster.processes[1].log_tail(100_000)  # the alert
    cluster.restart(2)
    signed = coordinator.sign_spend("cheat", _spend(1), _approved(cluster), signers=[1, 2])
    assert coordinator.key("cheat").address == signed.sender
    assert {2: True} == _setups(cluster, 1, "cheat")


def test_co_signer_sending_inconsistent_ot_rows_is_named_by_its_peer(cluster: EcdsaCluster,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A co-signer process whose round-1 OT-extension rows fail the KOS consistency check (one bit
    flipped before sealing): its peer aborts naming it, and the pair's OT setup is discarded."""
    coordinator = cluster.coordinator
    coordinator.create_key("ot-rows", 2)
    coordinator.sign_spend("ot-rows", _spend(0), _approved(cluster), signers=[1, 2])
    monkeypatch.setenv("COFFER_TEST_FAULT", "round1-ot")
    cluster.restart(2, module="tests.mpc.ecdsa_evil_cosigner")
    try:
        with pytest.raises(SigningAborted) as aborted:
            coordinator.sign_spend("ot-rows", _spend(1), _approved(cluster), signers=[1, 2])
        assert ("ecdsa.abort.OtConsistencyFailure", (2,), 1) == (
            aborted.value.rule, aborted.value.culprits, aborted.value.reporter)
        assert {2: False} == _setups(cluster, 1, "ot-rows")
    finally:
        monkeypatch.delenv("COFFER_TEST_FAULT")
        cluster.restart(2)


def test_fewer_than_threshold_is_refused_by_coordinator_and_co_signer(cluster: EcdsaCluster) -> None:
    """One signer for a 2-of-3 key: the coordinator refuses, and so does the co-signer itself."""
    cluster.coordinator.create_key("few", 2)
    with pytest.raises(InsufficientSigners):
        cluster.coordinator.sign_spend("few", _spend(), _approved(cluster), signers=[1])
    with pytest.raises(CosignerRefused) as refused:
        _client(cluster, 1).call("/v1/ecdsa/sign/round1", _round1_body("few", [1], _spend(), _approved(cluster)))
    assert "session.too_few_signers" == refused.value.rule


def test_revoked_co_signer_is_refused_after_a_re_share(cluster: EcdsaCluster) -> None:
    """Re-share excluding co-signer 3: same address, 1 and 2 sign; any set with 3 is refused."""
    coordinator = cluster.coordinator
    key = coordinator.create_key("revoke", 2)
    reshared = coordinator.reshare("revoke", revoke=[3])
    assert (key.address, 2, (3,)) == (reshared.address, reshared.version, reshared.revoked)
    with pytest.raises(CosignerRevoked):
        coordinator.sign_spend("revoke", _spend(), _approved(cluster), signers=[1, 3])
    with pytest.raises(CosignerRefused) as refused:
        _client(cluster, 1).call("/v1/ecdsa/sign/round1",
                                 _round1_body("revoke", [1, 3], _spend(), _approved(cluster), version=2))
    assert ("cosigner.revoked", (3,)) == (refused.value.rule, refused.value.culprits)
    assert key.address == coordinator.sign_spend("revoke", _spend(), _approved(cluster), signers=[1, 2]).sender
    assert {"revoke": [3]} == {k["key_id"]: k["revoked"] for k in cluster.status(2)["keys"]
                               if k["key_id"] == "revoke" and k["status"] == "active"}


def test_kill_between_rounds_fails_cleanly_then_a_new_session_signs(cluster: EcdsaCluster,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """kill -9 of a co-signer after round 1: the session fails naming it, the survivor discards its
    setups; after a restart a new session (fresh pairing, fresh nonces) signs the same request."""
    coordinator = cluster.coordinator
    coordinator.create_key("crash", 2)
    approvals = _approved(cluster)
    original = coordinator._fanout

    def fanout(signers: list[int], path: str, body: Any, started: list[int]) -> Any:
        if path.endswith("/round2"):
            cluster.kill(2)
        return original(signers, path, body, started)

    monkeypatch.setattr(coordinator, "_fanout", fanout)
    initial = _session_rounds(cluster, 1)
    with pytest.raises(SigningAborted) as aborted:
        coordinator.sign_spend("crash", _spend(), approvals, signers=[1, 2])
    assert ("cosigner.unavailable", (2,)) == (aborted.value.rule, aborted.value.culprits)
    assert {2: False} == _setups(cluster, 1, "crash")
    monkeypatch.undo()
    cluster.restart(2)
    assert [] == [s for s in cluster.status(2)["setups"] if s["key_id"] == "crash"]  # memory only
    before = _session_rounds(cluster, 1)
    signed = coordinator.sign_spend("crash", _spend(), approvals, signers=[1, 2])
    assert coordinator.key("crash").address == signed.sender
    after = _session_rounds(cluster, 1)
    assert 1 == len(set(after) - set(before))  # a fresh session id (fresh nonce), run through round 3
    assert [3] == [after[s] for s in set(after) - set(before)]
    assert 1 == len(set(before) - set(initial))  # the killed session stays marked: never run again


def _session_rounds(cluster: EcdsaCluster, cosigner: int) -> dict[bytes, int]:
    database = sqlite3.connect(cosigner_dir(cluster.home, cosigner) / "ecdsa" / "ecdsa.db")
    try:
        return {bytes(row[0]): int(row[1]) for row in database.execute("SELECT session_id, round FROM sessions")}
    finally:
        database.close()


def test_replayed_session_is_refused(cluster: EcdsaCluster) -> None:
    """Round 1 is marked used durably; the same round-1 request again (same session id) is refused."""
    coordinator = cluster.coordinator
    coordinator.create_key("replay", 2)
    coordinator.pair("replay", 1, 2)
    body = _round1_body("replay", [1, 2], _spend(), _approved(cluster), nonce=secrets.token_bytes(32))
    first = _client(cluster, 1).call("/v1/ecdsa/sign/round1", body)
    database = sqlite3.connect(cosigner_dir(cluster.home, 1) / "ecdsa" / "ecdsa.db")
    try:  # "round 1 used" was on disk before the round-1 output left the co-signer
        assert [(1,)] == database.execute("SELECT round FROM sessions WHERE session_id = ?",
                                          (bytes.fromhex(first["session_id"]),)).fetchall()
    finally:
        database.close()
    with pytest.raises(SessionReplayed):
        _client(cluster, 1).call("/v1/ecdsa/sign/round1", body)
    _client(cluster, 1).call("/v1/ecdsa/sign/abort", {"session_id": first["session_id"], "reason": "test"})


def test_opaque_digest_and_mismatched_spends_are_refused(cluster: EcdsaCluster) -> None:
    """A digest from the coordinator, a spend paying more than approved, another chain id, a sweep
    to a foreign address, and a withdrawal without approval: each refused before any output."""
    coordinator = cluster.coordinator
    coordinator.create_key("opaque", 2)
    coordinator.pair("opaque", 1, 2)
    client = _client(cluster, 1)
    body = _round1_body("opaque", [1, 2], _spend(), _approved(cluster))
    with pytest.raises(OpaqueMessageRefused):
        client.call("/v1/ecdsa/sign/round1", {**body, "digest": _spend().digest().hex()})
    with pytest.raises(CosignerRefused) as refused:
        client.call("/v1/ecdsa/sign/round1", _round1_body("opaque", [1, 2], _spend(value_wei=2 * VALUE_WEI),
                                                          _approved(cluster)))
    assert "spend.mismatch" == refused.value.rule
    with pytest.raises(CosignerRefused) as refused:  # the same transfer on a chain it does not sign for
        client.call("/v1/ecdsa/sign/round1", _round1_body("opaque", [1, 2], EthSpend(
            "withdrawal", 1, 0, 10**9, 3 * 10**9, 21_000, DESTINATION, VALUE_WEI), _approved(cluster)))
    assert "spend.chain_id" == refused.value.rule
    sweep = EthSpend("deposit_sweep", 1337, 0, 10**9, 3 * 10**9, 21_000, DESTINATION, VALUE_WEI, (0,))
    with pytest.raises(SigningAborted) as aborted:
        coordinator.sign_spend("opaque", sweep)
    assert "sweep.destination" == aborted.value.rule
    with pytest.raises(SigningAborted) as aborted:
        coordinator.sign_spend("opaque", _spend())
    assert "spend.not_approved" == aborted.value.rule


def test_halt_stops_signing(cluster: EcdsaCluster) -> None:
    """With a halt notice in force every co-signer refuses (rule "halt"), also mid-session; cleared,
    they sign again."""
    coordinator = cluster.coordinator
    coordinator.create_key("halt", 2)
    coordinator.pair("halt", 1, 2)
    body = _round1_body("halt", [1, 2], _spend(), _approved(cluster))
    opened = {c: _client(cluster, c).call("/v1/ecdsa/sign/round1", body) for c in (1, 2)}
    cluster.notices.halted = True
    try:
        def refused_for_halt() -> bool:
            try:
                _client(cluster, 1).call("/v1/ecdsa/sign/round1", _round1_body("halt", [1, 2], _spend(),
                                                                               _approved(cluster)))
            except CosignerRefused as error:
                return "halt" == error.rule
            return False

        wait_until(refused_for_halt, timeout=15, what="co-signer sees the halt")
        with pytest.raises(CosignerRefused) as refused:  # a session opened before the halt stops too
            _client(cluster, 1).call("/v1/ecdsa/sign/round2", {"session_id": opened[1]["session_id"],
                                                              "messages": {"2": opened[2]["messages"]["1"]}})
        assert "halt" == refused.value.rule
    finally:
        cluster.notices.halted = False
    wait_until(lambda: _signs(cluster), timeout=15, what="co-signers sign again")


def _signs(cluster: EcdsaCluster) -> bool:
    try:
        cluster.coordinator.sign_spend("halt", _spend(), _approved(cluster), signers=[1, 2])
    except (CosignerRefused, SigningAborted):
        return False
    return True


def test_no_secret_in_status_or_logs(cluster: EcdsaCluster, tmp_path: Path) -> None:
    """Status lists setups and keys without any secret; co-signer logs carry no share or seed."""
    coordinator = cluster.coordinator
    coordinator.create_key("quiet", 2)
    with capture_logs():
        coordinator.sign_spend("quiet", _spend(), _approved(cluster), signers=[2, 3])
    status = cluster.status(2)
    assert {"cosigner_id", "keys", "setups", "sessions"} == set(status)
    for process in cluster.processes.values():
        text = process.log_tail(200_000)
        assert "secret_share" not in text and "seed" not in text


def test_dkg_gives_every_co_signer_the_same_key_and_an_ethereum_address(cluster: EcdsaCluster) -> None:
    """The DKG over the three processes: each reports the same group key; the address is its keccak."""
    from coffer.mpc.ecdsa import ethereum_address

    key = cluster.coordinator.create_key("address", 2)
    reported = {cosigner: [k["group_public_key"] for k in cluster.status(cosigner)["keys"] if k["key_id"] == "address"]
                for cosigner in (1, 2, 3)}
    assert {1: [key.group_public_key.hex()], 2: [key.group_public_key.hex()], 3: [key.group_public_key.hex()]} == reported
    assert ethereum_address(key.group_public_key) == key.address
    assert key.address.startswith("0x") and 42 == len(key.address)
    with pytest.raises(CosignerRefused) as refused:
        cluster.coordinator.create_key("address", 2)
    assert "dkg.key_exists" == refused.value.rule


def test_re_share_without_a_valid_test_signature_keeps_the_old_shares(cluster: EcdsaCluster,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The co-signers activate new shares only with a valid test signature by them; a bad one is
    refused (rule reshare.untested) and the old version stays active."""
    from coffer.mpc.ecdsa import Signature

    coordinator = cluster.coordinator
    coordinator.create_key("untested", 2)
    monkeypatch.setattr(coordinator, "_session", lambda *args, **kwargs: Signature(1, 1, 0))
    with pytest.raises(CosignerRefused) as refused:
        coordinator.reshare("untested", revoke=[3])
    assert "reshare.untested" == refused.value.rule
    assert [(1, "active"), (2, "pending")] == [(k["version"], k["status"]) for k in cluster.status(1)["keys"]
                                               if k["key_id"] == "untested"]


def test_relayed_message_altered_or_from_outside_is_refused_naming_its_sender(cluster: EcdsaCluster) -> None:
    """The coordinator cannot alter a sealed co-signer message nor inject one: refused, sender named."""
    coordinator = cluster.coordinator
    coordinator.create_key("sealed", 2)
    coordinator.pair("sealed", 1, 2)
    body = _round1_body("sealed", [1, 2], _spend(), _approved(cluster))
    first = {c: _client(cluster, c).call("/v1/ecdsa/sign/round1", body) for c in (1, 2)}
    session_id = first[1]["session_id"]
    sealed = bytearray(bytes.fromhex(first[2]["messages"]["1"]))
    sealed[40] ^= 1
    with pytest.raises(ProtocolViolation) as refused:
        _client(cluster, 1).call("/v1/ecdsa/sign/round2", {"session_id": session_id,
                                                          "messages": {"2": sealed.hex()}})
    assert 2 == refused.value.sender
    assert {2: False} == _setups(cluster, 1, "sealed")  # the abort discarded the setup
    with pytest.raises(ProtocolViolation) as refused:
        _client(cluster, 2).call("/v1/ecdsa/sign/round2", {"session_id": session_id,
                                                          "messages": {"3": first[1]["messages"]["2"]}})
    assert 3 == refused.value.sender


def test_repeated_aborts_blamed_on_a_peer_stop_new_pairings_with_it(cluster: EcdsaCluster) -> None:
    """After three aborts blamed on co-signer 2 (altered relayed messages), co-signer 1 refuses a
    fresh pairing with it for a while (each abort may leak a little): rule pair.rate_limited."""
    coordinator = cluster.coordinator
    coordinator.create_key("limited", 2)
    for _ in range(3):
        coordinator.pair("limited", 1, 2)
        body = _round1_body("limited", [1, 2], _spend(), [])
        body["spend"] = EthSpend("deposit_sweep", 1337, 0, 10**9, 3 * 10**9, 21_000,
                                 coordinator.key("limited").address, VALUE_WEI, (0,)).to_json()
        first = {c: _client(cluster, c).call("/v1/ecdsa/sign/round1", body) for c in (1, 2)}
        sealed = bytearray(bytes.fromhex(first[2]["messages"]["1"]))
        sealed[-1] ^= 1
        with pytest.raises(ProtocolViolation):
            _client(cluster, 1).call("/v1/ecdsa/sign/round2", {"session_id": first[1]["session_id"],
                                                              "messages": {"2": sealed.hex()}})
        _client(cluster, 2).call("/v1/ecdsa/sign/abort", {"session_id": first[2]["session_id"], "reason": "test"})
    with pytest.raises(SigningAborted) as refused:
        coordinator.pair("limited", 1, 2)
    assert ("pair.rate_limited", (2,), 1) == (refused.value.rule, refused.value.culprits, refused.value.reporter)
    assert key_address_signs(cluster, "limited", [1, 3])


def key_address_signs(cluster: EcdsaCluster, key_id: str, signers: list[int]) -> bool:
    """Other pairs are unaffected."""
    return cluster.coordinator.key(key_id).address == cluster.coordinator.sign_spend(
        key_id, _spend(), _approved(cluster), signers=signers).sender
