"""The operations console over its API: security-key enrolment, sign-in and approvals (accepted by
a signer's own verification), rejection, the halt and the officers' resume, reconciliation,
signers, the audit log, metrics and health."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from nacl.signing import SigningKey

from coffer.audit import audit_events
from coffer.pins import SignerPins
from coffer.policy import Role, parse_approval, verify_approvals
from coffer.policy.engine import epoch_s
from coffer.policy.roles import OperatorRegistry
from coffer.recon import (
    CustodyScript,
    Holding,
    OnchainCheckInput,
    Reconciler,
    Scheduler,
    holding_columns,
    resume_message,
)
from tests.web.conftest import START, Web
from tests.web.console_world import ConsoleWorld, SoftKey, build_console


@pytest.fixture
def world(web: Web) -> ConsoleWorld:
    return build_console(web)


def _approve(world: ConsoleWorld, operator_id: str, key: SoftKey) -> dict[str, object]:
    client = world.client()
    world.enrol(client, operator_id, key)
    csrf = world.sign_in(client, operator_id, key)
    digest = world.request.digest_hex
    start = client.post(f"/api/v1/console/approvals/{digest}/challenge", headers={"X-CSRF-Token": csrf})
    assert 200 == start.status_code, start.text
    body = start.json()
    done = client.post(f"/api/v1/console/approvals/{digest}/approve", headers={"X-CSRF-Token": csrf},
                       json={"ceremony": body["ceremony"], **key.get(body["options"])})
    assert 200 == done.status_code, done.text
    result: dict[str, object] = done.json()
    return result


def test_security_key_approval_is_accepted_by_signers(world: ConsoleWorld) -> None:
    """An approval made with a security key counts for the policy and verifies against signers' pins."""
    result = _approve(world, "ann", SoftKey())
    approval = parse_approval(str(result["approval"]).encode())
    assert ("ann", "webauthn", Role.APPROVER) == (approval.operator_id, approval.scheme, approval.role)
    pins = SignerPins.from_json(SignerPins(b"\x01" * 32, tuple(world.console.policy.operators()), "", "",
                                           b"\x02" * 32, "http://x", 30).to_json())
    verified = verify_approvals(world.request, [approval], OperatorRegistry(pins.operators), now_s=epoch_s(START))
    assert ["ann"] == [v.operator_id for v in verified]
    queue = world.client()
    client, _ = world.operator_session("carl")
    item = client.get(f"/api/v1/console/approvals/{world.request.digest_hex}").json()
    assert ["ann"] == item["approvers"]
    assert queue is not None


def test_tampered_security_key_approval_is_refused(world: ConsoleWorld) -> None:
    """A security-key approval with one byte of its assertion changed does not verify."""
    result = _approve(world, "ann", SoftKey())
    approval = parse_approval(str(result["approval"]).encode())
    proof = bytearray(approval.proof)
    proof[-5] ^= 1
    from dataclasses import replace

    from coffer.policy import ApprovalRefused

    with pytest.raises(ApprovalRefused):
        verify_approvals(world.request, [replace(approval, proof=bytes(proof))], world.console.policy.operators(),
                         now_s=epoch_s(START))


def test_enrolment_needs_the_operator_key(world: ConsoleWorld) -> None:
    """Enrolling a security key with a wrong operator-key signature is refused and registers nothing."""
    client = world.client()
    start = client.post("/api/v1/console/webauthn/register/options", json={"operator_id": "ann"}).json()
    wrong = world.keys["carl"].sign(bytes.fromhex(start["enrol_message"])).hex()
    refused = client.post("/api/v1/console/webauthn/register",
                          json={"ceremony": start["ceremony"], **SoftKey().create(start["options"]),
                                "ed25519_signature": wrong})
    assert 403 == refused.status_code
    assert world.console.policy.operators().get("ann").key_for("webauthn") is None


def test_signin_refuses_another_key_and_replayed_ceremony(world: ConsoleWorld) -> None:
    """Another authenticator's answer, or an answer to a used ceremony, does not sign in."""
    client = world.client()
    key = SoftKey()
    world.enrol(client, "ann", key)
    start = client.post("/api/v1/console/webauthn/signin/options", json={"operator_id": "ann"}).json()
    stranger = SoftKey(credential_id=key.credential_id)
    assert 403 == client.post("/api/v1/console/webauthn/signin",
                              json={"ceremony": start["ceremony"], **stranger.get(start["options"])}).status_code
    assert 403 == client.post("/api/v1/console/webauthn/signin",
                              json={"ceremony": start["ceremony"], **key.get(start["options"])}).status_code
    assert 401 == client.get("/api/v1/console/status").status_code


def test_initiator_cannot_approve_and_reject_leaves_queue(world: ConsoleWorld) -> None:
    """The initiator holds no approval role; a rejection is audited and shown as rejected."""
    ivan, csrf = world.operator_session("ivan")
    digest = world.request.digest_hex
    assert 403 == ivan.post(f"/api/v1/console/approvals/{digest}/challenge", headers={"X-CSRF-Token": csrf}).status_code
    carl, csrf = world.operator_session("carl")
    assert 403 == carl.post(f"/api/v1/console/approvals/{digest}/reject", json={"reason": "no"}).status_code
    assert 200 == carl.post(f"/api/v1/console/approvals/{digest}/reject", json={"reason": "suspicious"},
                            headers={"X-CSRF-Token": csrf}).status_code
    listed = carl.get("/api/v1/console/approvals").json()
    assert (["rejected"], 0) == ([r["status"] for r in listed["requests"]], listed["pending"])
    assert "suspicious" == world.console.audit.events(event="console.request_rejected")[0].payload["reason"]


def test_halt_banner_and_officer_resume(world: ConsoleWorld) -> None:
    """A security officer halts; every page shows the banner; a quorum of officers' signatures resumes."""
    dora, csrf = world.operator_session("dora")
    ann, ann_csrf = world.operator_session("ann")
    assert 403 == ann.post("/api/v1/console/halt", json={"reason": "x"}, headers={"X-CSRF-Token": ann_csrf}).status_code
    halt = dora.post("/api/v1/console/halt", json={"reason": "drill"}, headers={"X-CSRF-Token": csrf}).json()
    assert "HALTED: operator" in dora.get("/console/approvals").text
    assert "HALTED: operator" in world.client().get("/por").text
    reason = "drill over"
    message = bytes.fromhex(dora.get("/api/v1/console/halt/resume-message",
                                     params={"halt_id": halt["halt_id"], "reason": reason}).json()["message"])
    assert resume_message(halt["halt_id"], reason) == message
    one = [{"officer_id": "dora", "signature": world.officer_keys["dora"].sign(message).signature.hex()}]
    body = {"halt_id": halt["halt_id"], "reason": reason, "signatures": one}
    assert 400 == dora.post("/api/v1/console/halt/resume", json=body, headers={"X-CSRF-Token": csrf}).status_code
    body["signatures"] = one + [{"officer_id": "sam", "signature": world.officer_keys["sam"].sign(message).signature.hex()}]
    resumed = dora.post("/api/v1/console/halt/resume", json=body, headers={"X-CSRF-Token": csrf})
    assert (200, False) == (resumed.status_code, resumed.json()["halted"])
    assert "HALTED" not in dora.get("/console/approvals").text
    assert SigningKey  # officers sign with their own Ed25519 keys, never the console


def _onchain(backing: int) -> OnchainCheckInput:
    scripts = [CustodyScript("BTC", "cold", "0014" + "aa" * 20)]
    holdings = [Holding(scripts[0].script, backing)]
    return OnchainCheckInput({"BTC": 101}, scripts, holding_columns(scripts, holdings), {("BTC", "cold"): backing},
                             {"BTC": 800}, (), ())


def run_checks(world: ConsoleWorld, backings: list[int]) -> None:
    """On-chain checks with the given chain holdings, one interval apart."""
    current = [backings[0]]
    reconciler = Reconciler(world.console.halt, onchain=lambda: _onchain(current[0]), engine=world.web.engine)
    clock = [1000.0]
    scheduler = Scheduler(world.web.engine, reconciler.jobs(onchain_interval_s=600), node="t", clock=lambda: clock[0])
    for backing in backings:
        current[0] = backing
        scheduler.run_due()
        clock[0] += 600


def test_recon_signers_audit_metrics_health(world: ConsoleWorld) -> None:
    """Reconciliation with its ratio chart, signers, a verified audit chain, metrics and health answer."""
    run_checks(world, [1000, 1200, 900])
    client, _ = world.operator_session("carl")
    recon = client.get("/api/v1/console/recon").json()
    assert ["1.25", "1.5", "1.125"] == [f"{p['ratio']:.4g}" for p in recon["reserve_ratio"]["BTC"]]
    assert "900" == recon["latest_onchain"]["assets"][0]["backing"]
    page = client.get("/console/recon").text
    assert 'id="chart-BTC"' in page and "<polyline" in page
    signers = client.get("/api/v1/console/signers").json()["signers"]
    assert [("cold signer", "1"), ("co-signer", "c1")] == [(s["kind"], s["signer_id"]) for s in signers]
    assert signers[0]["policy_hash"]
    verified = client.get("/api/v1/console/audit/verify").json()
    assert verified["ok"] and verified["events"] > 5
    assert "chain-ok" in client.get("/console/audit").text
    metrics = world.client().get("/metrics").text
    assert 'coffer_queue_length{queue="approvals"} 1.0' in metrics and "coffer_halted 0.0" in metrics
    assert 'coffer_check_runs_total{job="onchain",status="ok"} 3.0' in metrics
    assert {"status": "ok"} == world.client().get("/health").json()
    assert "ok" == world.client().get("/health/ready").json()["status"]


def test_audit_viewer_shows_a_broken_chain(world: ConsoleWorld) -> None:
    """An audit event changed in the database is reported with its sequence number."""
    with world.web.engine.begin() as conn:
        conn.execute(sa.update(audit_events).where(audit_events.c.seq == 2).values(actor="mallory"))
    client, _ = world.operator_session("carl")
    assert {"ok": False, "broken_at_seq": 2} == {k: v for k, v in client.get("/api/v1/console/audit/verify").json().items()
                                                 if k != "detail"}
    assert "chain-broken" in client.get("/console/audit").text


def test_rejected_request_takes_no_more_approvals(world: ConsoleWorld) -> None:
    """After a rejection the console refuses to start a security-key approval of that request."""
    carl, csrf = world.operator_session("carl")
    digest = world.request.digest_hex
    carl.post(f"/api/v1/console/approvals/{digest}/reject", json={"reason": "no"}, headers={"X-CSRF-Token": csrf})
    refused = carl.post(f"/api/v1/console/approvals/{digest}/challenge", headers={"X-CSRF-Token": csrf})
    assert (403, "refused") == (refused.status_code, refused.json()["error"])


def test_draws_per_signer_and_signing_latency(world: ConsoleWorld) -> None:
    """Signers list the batches they were drawn for; /metrics reports draw-to-signature latency."""
    audit = world.console.audit
    drawn = START.replace(minute=1)
    audit.append("cold.pipeline", "cold.quorum_drawn", {"batch_id": "b1", "attempt": 0, "nominated": [1, 3]}, at=drawn)
    audit.append("cold.pipeline", "cold.batch_signed", {"batch_id": "b1", "txid": "00"},
                 at=drawn.replace(second=4))
    client, _ = world.operator_session("carl")
    signers = client.get("/api/v1/console/signers").json()["signers"]
    assert ["b1#0"] == signers[0]["draws"]
    metrics = world.client().get("/metrics").text
    assert "coffer_signing_latency_seconds_count 1.0" in metrics and "coffer_signing_latency_seconds_sum 4.0" in metrics


def test_enrol_sign_cli(tmp_path: Path, world: ConsoleWorld) -> None:
    """`coffer console enrol-sign` signs an enrolment message with the key file and refuses anything else."""
    from typer.testing import CliRunner

    from coffer.web.console.auth import enrol_message
    from coffer.web.console.cli import console_app

    key_file = tmp_path / "ann.key"
    key_file.write_text(world.keys["ann"].seed_hex() + "\n")
    message = enrol_message("ann", b"\x05" * 32)
    result = CliRunner().invoke(console_app, ["enrol-sign", "--key-file", str(key_file), "--message", message.hex()])
    assert (0, world.keys["ann"].sign(message).hex()) == (result.exit_code, result.output.strip())
    other = CliRunner().invoke(console_app, ["enrol-sign", "--key-file", str(key_file), "--message", "00" * 40])
    assert 0 != other.exit_code


def test_security_key_approval_needs_user_verification(world: ConsoleWorld) -> None:
    """An assertion made with a touch only (no PIN or biometric) is not an approval."""
    from coffer.policy import Approval, ApprovalRefused, approval_message
    from coffer.policy.webauthn import WebAuthnAssertion
    from tests.web.console_world import b64url, unb64url

    key = SoftKey()
    world.enrol(world.client(), "ann", key)
    unsigned = Approval(world.request.digest(), "ann", Role.APPROVER, epoch_s(START) + 600, "webauthn", b"")
    key.user_verified = False
    answer = key.get({"challenge": b64url(approval_message(unsigned))})
    proof = WebAuthnAssertion(unb64url(answer["id"]), unb64url(answer["response"]["authenticatorData"]),
                              unb64url(answer["response"]["clientDataJSON"]),
                              unb64url(answer["response"]["signature"])).encode()
    from dataclasses import replace

    with pytest.raises(ApprovalRefused):
        verify_approvals(world.request, [replace(unsigned, proof=proof)], world.console.policy.operators(),
                         now_s=epoch_s(START))


def test_queue_reads_the_log_in_pages_and_keeps_up(world: ConsoleWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """With tiny pages the queue still lists every request, newest first, and picks up new ones."""
    import coffer.web.console.approvals as approvals
    from tests.web.console_world import make_request

    monkeypatch.setattr(approvals, "EVENT_PAGE", 2)
    digests = [world.request.digest_hex]
    for number in range(1, 5):
        request = make_request(world.console.policy, nonce=f"{number:032x}")
        world.console.policy.submit(request, now=START)
        digests.append(request.digest_hex)
    client, _ = world.operator_session("carl")
    assert digests[::-1] == [r["request_digest"] for r in client.get("/api/v1/console/approvals").json()["requests"]]
    late = make_request(world.console.policy, nonce=f"{99:032x}")
    world.console.policy.submit(late, now=START)
    listed = client.get("/api/v1/console/approvals").json()["requests"]
    assert (late.digest_hex, 6) == (listed[0]["request_digest"], len(listed))


def test_rejected_request_stays_rejected(world: ConsoleWorld) -> None:
    """Attack 9: after carl rejects a request in the console, ann's Ed25519 approval of it is refused by the
    console and by the policy service (request.rejected), and no approval is stored; a request nobody
    rejected takes the same kind of approval."""
    from coffer.policy.approval import sign_approval
    from coffer.policy.errors import PolicyRefused
    from tests.web.console_world import make_request

    carl, csrf = world.operator_session("carl")
    digest = world.request.digest_hex
    assert 200 == carl.post(f"/api/v1/console/approvals/{digest}/reject", json={"reason": "no"},
                            headers={"X-CSRF-Token": csrf}).status_code
    expires = int(START.timestamp()) + 600
    late = sign_approval(world.keys["ann"], request=world.request, operator_id="ann", role=Role.APPROVER,
                         expires_at_s=expires)
    refused = carl.post(f"/api/v1/console/approvals/{digest}/approval", json={"approval": late.encode().hex()},
                        headers={"X-CSRF-Token": csrf})
    assert 403 == refused.status_code
    with pytest.raises(PolicyRefused) as caught:
        world.console.policy.approve(late, now=START)
    assert "request.rejected" == caught.value.rule
    assert () == world.console.policy.approvals(digest)
    other = make_request(world.console.policy, nonce="01" * 16)
    world.console.policy.submit(other, now=START)
    fine = sign_approval(world.keys["ann"], request=other, operator_id="ann", role=Role.APPROVER, expires_at_s=expires)
    world.console.policy.approve(fine, now=START)
    assert ("ann",) == tuple(a.operator_id for a in world.console.policy.approvals(other.digest_hex))
