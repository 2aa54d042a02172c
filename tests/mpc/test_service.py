"""Co-signer services as real processes over mutual TLS: DKG, signing, refusals, refresh, revocation."""

from __future__ import annotations

import json
import secrets
import socket
import sqlite3
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import VerifyKey

from coffer.canonical import canonical_json
from coffer.layout import ceremony_directory
from coffer.mpc.errors import InsufficientSigners, InvalidSignatureShare
from coffer.mpc.service import (
    CosignerClient,
    CosignerRefused,
    CosignerRevoked,
    CosignerUnavailable,
    MpcCoordinator,
    OpaqueMessageRefused,
    ProtocolViolation,
    SessionReplayed,
)
from coffer.mpc.service.harness import Cluster, start_cluster
from coffer.mpc.service.server import cosigner_dir
from coffer.testing import wait_until
from coffer.tls import TlsFiles, issue_certificate

STATEMENT = b"coffer-por-statement/1\n" + canonical_json({"asset": "BTC", "height": 101, "solvent": True})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = start_cluster(Path(tmp_path_factory.mktemp("mpc-home")))
    try:
        started.mpc.dkg("publication", "ed25519", 3)
        started.mpc.dkg("hot-btc", "taproot", 3)
        yield started
    finally:
        started.stop()


def test_dkg_gives_one_group_key(cluster: Cluster) -> None:
    """A 3-of-5 DKG among five co-signer processes leaves every co-signer with the same group key."""
    key = cluster.mpc.key("hot-btc")
    assert 3 == key.threshold
    assert [1, 2, 3, 4, 5] == [m.cosigner for m in key.members]
    for cosigner in range(1, 6):
        status = cluster.client(cosigner).call("/v1/status", {})
        held = {k["key_id"]: k for k in status["keys"]}
        assert key.public.to_bytes().hex() == held["hot-btc"]["public_package"]


def test_publication_signature_verifies_with_pynacl(cluster: Cluster) -> None:
    """The Ed25519 group key signs a proof-of-reserves statement that libsodium verifies."""
    key = cluster.mpc.key("publication")
    signature = cluster.mpc.sign_publication("publication", STATEMENT, cluster.attest_publication(STATEMENT),
                                             cosigners=[2, 4, 5])
    VerifyKey(key.publication_public_key()).verify(STATEMENT, signature)


def _counters(cluster: Cluster) -> dict[int, dict[str, int]]:
    return {c: cluster.client(c).call("/v1/status", {})["counters"] for c in cluster.ports}


def test_counters_show_guard_record_and_unseal_per_signature(cluster: Cluster) -> None:
    """Each fresh approved spend costs every signing co-signer one guard check, one durable
    "cleared" record and one HSM unseal; a retry of the same transaction unseals again but is
    not cleared twice; co-signers outside the set count nothing."""
    before = _counters(cluster)
    spends = [cluster.fresh_spend(10_000 + n) for n in range(2)]
    for raw, prevouts, approvals in [*spends, spends[1]]:
        cluster.mpc.sign_taproot_spend("hot-btc", raw, prevouts, approvals, cosigners=[1, 2, 3])
    after = _counters(cluster)
    grown = {c: {name: after[c][name] - before[c][name] for name in after[c]} for c in after}
    signer = {"guard_checks": 2, "durable_records": 2, "unseals": 3}
    idle = {"guard_checks": 0, "durable_records": 0, "unseals": 0}
    assert {1: signer, 2: signer, 3: signer, 4: idle, 5: idle} == grown


class _Unreachable:
    """Stands in for the notice source's lock: every notice it would issue fails, so the notice
    server serves nothing, as when the coordinator is cut off (or withholds the halt state)."""

    def __enter__(self) -> None:
        raise OSError("the coordinator cannot be reached")

    def __exit__(self, *exc: object) -> None:
        return None


def _halt_clear(cluster: Cluster, cosigners: tuple[int, ...]) -> list[bool]:
    return [bool(cluster.client(c).call("/v1/status", {})["halt_clear"]) for c in cosigners]


def test_cosigner_cut_off_from_halt_notices_refuses_to_sign(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """No fresh halt notice reaches the co-signer processes: once the last one is older than the
    pinned bound, a fresh approved spend is refused with rule `halt` (fail closed); they sign
    again once they hear the coordinator."""
    monkeypatch.setattr(cluster.notices, "_lock", _Unreachable())
    wait_until(lambda: [False] * 3 == _halt_clear(cluster, (1, 2, 3)), timeout=60, what="co-signers fail closed")
    raw, prevouts, approvals = cluster.fresh_spend(20_000)
    with pytest.raises(CosignerRefused) as refused:
        cluster.mpc.sign_taproot_spend("hot-btc", raw, prevouts, approvals, cosigners=[1, 2, 3])
    assert "halt" == refused.value.rule
    monkeypatch.undo()
    wait_until(lambda: [True] * 3 == _halt_clear(cluster, (1, 2, 3)), timeout=60, what="co-signers clear again")
    cluster.mpc.sign_taproot_spend("hot-btc", *cluster.fresh_spend(20_001), cosigners=[1, 2, 3])


# -- helpers -------------------------------------------------------------------------------------
class Tampering(CosignerClient):
    """A co-signer connection whose replies are altered on the way: a malicious co-signer."""

    def __init__(self, inner: CosignerClient, path: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.__dict__.update(inner.__dict__)
        self._path, self._change = path, change

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = super().call(path, body)
        return self._change(reply) if path == self._path else reply


def coordinator_with(cluster: Cluster, replace: dict[int, CosignerClient]) -> MpcCoordinator:
    clients = {c: replace.get(c) or cluster.client(c) for c in cluster.ports}
    return MpcCoordinator(cluster.engine, clients, approve=cluster.quorum.approve)


def commit_body(cluster: Cluster, signers: list[int], document: bytes = STATEMENT, **changes: Any) -> dict[str, Any]:
    body = {"key_id": "publication", "version": cluster.mpc.key("publication").version, "signers": signers,
            "coordinator_nonce": secrets.token_hex(32), "kind": "publication",
            "payload": {"document": document.hex(), "attestation": cluster.attest_publication(document).hex()}}
    body.update(changes)
    return body


# -- malicious co-signers and coordinators -----------------------------------------------------------
def test_bad_signature_share_names_its_sender(cluster: Cluster) -> None:
    """A co-signer that sends a wrong signature share is named; no signature is released."""
    def corrupt(reply: dict[str, Any]) -> dict[str, Any]:
        share = bytes.fromhex(reply["shares"][0])
        return {"shares": [(bytes([share[0] ^ 1]) + share[1:]).hex()]}

    mpc = coordinator_with(cluster, {3: Tampering(cluster.client(3), "/v1/sign/share", corrupt)})
    try:
        with pytest.raises(InvalidSignatureShare) as bad:
            mpc.sign_publication("publication", STATEMENT, cluster.attest_publication(STATEMENT), cosigners=[1, 3, 5])
        assert (3,) == bad.value.culprits
    finally:
        mpc.close()


def test_malformed_reply_names_the_cosigner(cluster: Cluster) -> None:
    """A round-one reply with a point off the curve is a typed error naming the co-signer."""
    def garbage(reply: dict[str, Any]) -> dict[str, Any]:
        return {**reply, "commitments": ["ff" * 64]}

    mpc = coordinator_with(cluster, {4: Tampering(cluster.client(4), "/v1/sign/commit", garbage)})
    try:
        with pytest.raises(ProtocolViolation) as bad:
            mpc.sign_publication("publication", STATEMENT, cluster.attest_publication(STATEMENT), cosigners=[2, 4, 5])
        assert 4 == bad.value.sender
    finally:
        mpc.close()


def test_relayed_commitment_off_the_curve_names_its_author(cluster: Cluster) -> None:
    """A co-signer told that participant 2 committed to a bad point blames participant 2."""
    body = commit_body(cluster, [1, 2, 3])
    replies = {c: cluster.client(c).call("/v1/sign/commit", body) for c in (1, 2, 3)}
    relay = {str(c): replies[c]["commitments"] for c in (1, 2, 3)}
    relay["2"] = ["00" * 64]
    with pytest.raises(ProtocolViolation) as bad:
        cluster.client(1).call("/v1/sign/share", {"session_id": replies[1]["session_id"], "commitments": relay})
    assert 2 == bad.value.sender


def test_duplicate_identifiers_are_refused(cluster: Cluster) -> None:
    """A signer set naming a co-signer twice is refused by the coordinator and by the co-signer."""
    with pytest.raises(InsufficientSigners):
        cluster.mpc.sign_publication("publication", STATEMENT, cluster.attest_publication(STATEMENT),
                                     cosigners=[1, 1, 2])
    with pytest.raises(ProtocolViolation) as bad:
        cluster.client(1).call("/v1/sign/commit", commit_body(cluster, [1, 1, 2]))
    assert bad.value.sender is None


def test_fewer_than_threshold_is_refused(cluster: Cluster) -> None:
    """Two co-signers of a 3-of-5 key cannot open a session, at the coordinator or at a co-signer."""
    with pytest.raises(InsufficientSigners):
        cluster.mpc.sign_publication("publication", STATEMENT, cluster.attest_publication(STATEMENT), cosigners=[1, 2])
    with pytest.raises(CosignerRefused) as refused:
        cluster.client(1).call("/v1/sign/commit", commit_body(cluster, [1, 2]))
    assert "session.too_few_signers" == refused.value.rule


def test_replayed_session_and_reused_nonce_are_refused(cluster: Cluster) -> None:
    """The same session id is never opened twice and a session's nonces never sign twice."""
    body = commit_body(cluster, [1, 2, 3])
    replies = {c: cluster.client(c).call("/v1/sign/commit", body) for c in (1, 2, 3)}
    with pytest.raises(SessionReplayed):
        cluster.client(1).call("/v1/sign/commit", body)
    relay = {str(c): replies[c]["commitments"] for c in (1, 2, 3)}
    share = {"session_id": replies[1]["session_id"], "commitments": relay}
    cluster.client(1).call("/v1/sign/share", share)
    with pytest.raises(SessionReplayed):
        cluster.client(1).call("/v1/sign/share", share)


def test_opaque_hash_is_refused(cluster: Cluster) -> None:
    """A coordinator asking for a signature on a bare 32-byte digest, or an unknown document, is refused."""
    opaque = commit_body(cluster, [1, 2, 3], kind="digest", payload={"digest": "11" * 32})
    with pytest.raises(OpaqueMessageRefused):
        cluster.client(1).call("/v1/sign/commit", opaque)
    digest = bytes(32)
    with pytest.raises(OpaqueMessageRefused):
        cluster.client(1).call("/v1/sign/commit", {**commit_body(cluster, [1, 2, 3]), "payload": {
            "document": digest.hex(), "attestation": "00" * 64}})
    spend = commit_body(cluster, [1, 2, 3], kind="taproot_spend")  # a Taproot spend asked of the Ed25519 key
    with pytest.raises(OpaqueMessageRefused):
        cluster.client(1).call("/v1/sign/commit", spend)


def test_unattested_publication_is_refused(cluster: Cluster) -> None:
    """A publication document without the coordinator HSM's attestation is refused."""
    body = commit_body(cluster, [1, 2, 3])
    body["payload"]["attestation"] = cluster.attest_publication(
        b"coffer-por-log/1\n" + canonical_json({"seq": 0})).hex()
    with pytest.raises(CosignerRefused) as refused:
        cluster.client(1).call("/v1/sign/commit", body)
    assert "attestation.signature" == refused.value.rule


def test_unknown_fields_are_refused_naming_the_coordinator(cluster: Cluster) -> None:
    """Every request body is parsed strictly: an extra field is a typed error naming the coordinator."""
    with pytest.raises(ProtocolViolation) as bad:
        cluster.client(2).call("/v1/sign/commit", {**commit_body(cluster, [1, 2, 3]), "extra": 1})
    assert bad.value.sender is None
    with pytest.raises(ProtocolViolation):
        cluster.client(2).call("/v1/sign/commit", {**commit_body(cluster, [1, 2, 3]), "version": "1"})


def test_cosigner_killed_between_rounds(cluster: Cluster) -> None:
    """A co-signer killed after round one fails the session cleanly; a new session succeeds; no nonce reused."""
    class KillBeforeShare(CosignerClient):
        def __init__(self, inner: CosignerClient) -> None:
            self.__dict__.update(inner.__dict__)

        def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
            if path == "/v1/sign/share":
                cluster.restart(3)
                self.close()
            return super().call(path, body)

    mpc = coordinator_with(cluster, {3: KillBeforeShare(cluster.client(3))})
    try:
        with pytest.raises(SessionReplayed) as lost:
            mpc.sign_publication("publication", STATEMENT, cluster.attest_publication(STATEMENT), cosigners=[1, 2, 3])
        assert 3 == lost.value.cosigner
    finally:
        mpc.close()
    signature = cluster.mpc.sign_publication("publication", STATEMENT, cluster.attest_publication(STATEMENT),
                                             cosigners=[1, 2, 3])
    VerifyKey(cluster.mpc.key("publication").publication_public_key()).verify(STATEMENT, signature)
    with sqlite3.connect(cosigner_dir(cluster.home, 3) / "cosigner.db") as db:
        states = [row[0] for row in db.execute("SELECT state FROM sessions")]
    assert "committed" in states  # the lost session's nonces can never be used: they died with the process


def test_client_without_ca_certificate_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    """A client whose certificate is not from the local CA is refused by mTLS, one from the CA that is not
    the coordinator's is refused by rule peer.name; the coordinator accepts only co-signer N's own
    certificate for co-signer N."""
    other = issue_certificate(tmp_path / "other-ca", tmp_path / "intruder", "coordinator")
    intruder = CosignerClient(1, cluster.ports[1], TlsFiles(cluster.tls.ca_cert, other.cert, other.key))
    with pytest.raises(CosignerUnavailable):
        intruder.call("/v1/status", {})
    sibling = issue_certificate(ceremony_directory(cluster.home), tmp_path / "sibling", "cosigner-9")
    with pytest.raises(CosignerRefused) as caught:
        CosignerClient(1, cluster.ports[1], sibling).call("/v1/status", {})
    assert "peer.name" == caught.value.rule
    impostor = CosignerClient(1, cluster.ports[2], cluster.tls)  # co-signer 2 answering for co-signer 1
    with pytest.raises(CosignerUnavailable):
        impostor.call("/v1/status", {})
    context = ssl.create_default_context(cafile=str(cluster.tls.ca_cert))
    with pytest.raises((ssl.SSLError, OSError)):
        with socket.create_connection(("127.0.0.1", cluster.ports[1]), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"POST /v1/status HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
                if not tls.recv(100):
                    raise OSError("closed")


def test_halt_refuses_por_but_signs_halt_notice(cluster: Cluster) -> None:
    """During a halt the co-signers refuse PoR statements (fail closed) but still sign the halt event."""
    cluster.notices.halted = True
    try:
        def refused() -> bool:
            try:
                cluster.mpc.sign_publication("publication", STATEMENT, cluster.attest_publication(STATEMENT))
            except CosignerRefused as error:
                return error.rule == "halt"
            return False

        wait_until(refused, timeout=20, what="co-signers see the halt")
        event = b"coffer/recon/halt-event/v1\x00" + canonical_json({"action": "halt", "halt_id": "h-1"})
        signature = cluster.mpc.sign_publication("publication", event, cluster.attest_publication(event))
        VerifyKey(cluster.mpc.key("publication").publication_public_key()).verify(event, signature)
    finally:
        cluster.notices.halted = False

    def clear() -> bool:
        try:
            cluster.mpc.sign_publication("publication", STATEMENT, cluster.attest_publication(STATEMENT))
        except CosignerRefused:
            return False
        return True

    wait_until(clear, timeout=20, what="co-signers see the resume")


# -- key lifecycle ---------------------------------------------------------------------------------
def test_refresh_keeps_the_key_and_deletes_old_shares(cluster: Cluster) -> None:
    """After a refresh the group key is unchanged, signatures verify, and every old share is deleted."""
    before = cluster.mpc.key("publication")
    after = cluster.mpc.refresh("publication")
    assert before.group_public_key == after.group_public_key
    assert before.version + 1 == after.version
    assert before.public.to_bytes() != after.public.to_bytes()
    signature = cluster.mpc.sign_publication("publication", STATEMENT, cluster.attest_publication(STATEMENT),
                                             cosigners=[3, 4, 5])
    VerifyKey(after.publication_public_key()).verify(STATEMENT, signature)
    for cosigner in range(1, 6):
        keys = cluster.client(cosigner).call("/v1/status", {})["keys"]
        assert {(before.version, "retired"), (after.version, "active")} <= {
            (k["version"], k["status"]) for k in keys if k["key_id"] == "publication"}
        with sqlite3.connect(cosigner_dir(cluster.home, cosigner) / "cosigner.db") as db:
            assert [(None,)] == list(db.execute("SELECT sealed FROM shares WHERE key_id = 'publication' AND version = ?",
                                                (before.version,)))


def test_revoked_cosigner_is_refused(cluster: Cluster) -> None:
    """After re-sharing without co-signer 5 (to 2-of-4), its participation is refused by everyone."""
    cluster.mpc.dkg("revocable", "ed25519", 3)
    key = cluster.mpc.reshare("revocable", revoke=[5], new_threshold=2)
    assert (5,) == key.revoked
    assert 2 == key.threshold
    document = STATEMENT
    body = {"key_id": "revocable", "version": key.version, "signers": [1, 5], "coordinator_nonce": "22" * 32,
            "kind": "publication", "payload": {"document": document.hex(),
                                               "attestation": cluster.attest_publication(document).hex()}}
    with pytest.raises(CosignerRevoked):
        cluster.mpc.sign_session(key, "publication", body["payload"], [document], cosigners=[1, 5])
    with pytest.raises(CosignerRefused) as refused:
        cluster.client(1).call("/v1/sign/commit", body)
    assert "cosigner.revoked" == refused.value.rule
    assert (5,) == refused.value.culprits
    signature = cluster.mpc.sign_session(key, "publication", body["payload"], [document], cosigners=[2, 4])[0]
    VerifyKey(key.publication_public_key()).verify(document, signature)


def test_mpc_cli_status_and_dkg(cluster: Cluster) -> None:
    """`coffer mpc dkg` and `coffer mpc status` drive the running co-signers from the data directory."""
    from typer.testing import CliRunner

    from coffer.db import make_engine, migrate, sqlite_url
    from coffer.keyholder.administrators import make_admin
    from coffer.keyholder.cli import gov_app
    from coffer.mpc.service.cli import mpc_app

    engine = make_engine(sqlite_url(cluster.home / "coffer.db"))
    migrate(engine)
    engine.dispose()
    (cluster.home / "coffer.toml").touch()  # an initialised home: the CLI refuses any other
    runner = CliRunner()
    action = cluster.home / "cli-key.action.json"
    argv = ["dkg", "--key", "cli-key", "--suite", "ed25519", "-t", "2", "--home", str(cluster.home),
            "--action", str(action), "--domain", cluster.quorum.domain]
    proposed = runner.invoke(mpc_app, argv)
    assert 3 == proposed.exit_code, proposed.output  # the proposal waits for the administrators
    for admin in cluster.quorum.admins[:2]:
        make_admin(cluster.home / "administrators" / admin.admin_id, admin.admin_id, admin.key)
        signed = runner.invoke(gov_app, ["sign", str(action), "--admin-dir",
                                         str(cluster.home / "administrators" / admin.admin_id)])
        assert 0 == signed.exit_code, signed.output
    made = runner.invoke(mpc_app, argv)
    assert 0 == made.exit_code, made.output
    assert 2 == _json_of(made.output)["threshold"]
    shown = runner.invoke(mpc_app, ["status", "--home", str(cluster.home)])
    assert 0 == shown.exit_code, shown.output
    status = _json_of(shown.output)
    assert ["cli-key"] == [k["key_id"] for k in status["keys"]]
    assert all(status["cosigners"][str(c)]["up"] for c in range(1, 6))


def _json_of(output: str) -> Any:
    """The JSON document a command printed (log lines may come before it)."""
    start = output.index("\n{") + 1 if not output.startswith("{") else 0
    return json.loads(output[start:])
