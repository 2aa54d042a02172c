"""The coordinator's policy service on SQLite and PostgreSQL: storage, audit, quorum, checkpoints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from coffer.audit import AuditLog
from coffer.db import make_engine, migrate
from coffer.hsm import Hsm
from coffer.policy import (
    ApprovalRefused,
    MalformedPolicy,
    Operator,
    PolicyQuorumRefused,
    PolicyRefused,
    RequestKind,
    Route,
    SegregationOfDuties,
    sign_activation,
    verify_checkpoint,
)
from coffer.policy.errors import CheckpointInvalid
from coffer.policy.service import PolicyService, WhitelistEntry

from .conftest import BTC, DAY_S, NOW, NOW_S, ROLES, World, make_signer

LATER = NOW.replace(day=29)


def make_service(engine: Engine, hsm: Hsm, world: World) -> PolicyService:
    service = PolicyService(engine, hsm=hsm, halted=lambda: False, hot_balance=lambda asset: 3 * BTC)
    for name, roles in ROLES.items():
        service.add_operator(Operator(name, frozenset(roles), world.keys[name].public_key), by="root", now=NOW)
    service.bootstrap_default(now=NOW)
    return service


@pytest.fixture
def service(engine: Engine, hsm: Hsm, world: World) -> PolicyService:
    """On SQLite and on PostgreSQL."""
    return make_service(engine, hsm, world)


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'coffer.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def lite(sqlite_engine: Engine, hsm: Hsm, world: World) -> PolicyService:
    """On SQLite only, for behaviour that does not depend on the database."""
    return make_service(sqlite_engine, hsm, world)


def events(engine: Engine, name: str) -> list[dict]:
    return [event.payload for event in AuditLog(engine).events(event=name)]


def test_withdrawal_flow_end_to_end(service: PolicyService, engine: Engine, world: World) -> None:
    """Whitelist, wait out the lock, submit, approve, attest; the hot co-signer's guard passes it."""
    mails: list[WhitelistEntry] = []
    service.whitelist_hooks.append(mails.append)
    service.add_whitelist("acct1", "BTC", "bcrt1qdestination", by="client:acct1", now=NOW.replace(day=25))
    assert ["bcrt1qdestination"] == [entry.destination for entry in mails]
    request = world.request(amount_minor=5_000_000)
    pending = service.submit(request, now=NOW)
    assert ("approvals.tier1",) == pending.pending_rules
    with pytest.raises(PolicyRefused):
        service.attest(request.digest_hex, now=NOW)
    decision = service.approve(world.approve("bob", request), now=NOW)
    assert (True, Route.HOT) == (decision.allowed, decision.route)
    attestation = service.attest(request.digest_hex, now=NOW)
    signer = make_signer(world, service.attestation_public_key(), Route.HOT)
    signer.sign(request, attestation)
    assert [request.digest()] == signer.signed
    with pytest.raises(PolicyRefused) as caught:
        service.attest(request.digest_hex, now=NOW)
    assert "request.already_attested" == caught.value.rule
    assert 1 == len(events(engine, "policy.attested"))
    assert 1 == len(events(engine, "policy.approval"))
    assert 1 <= len(events(engine, "policy.refused"))
    assert 4 == len(events(engine, "policy.decision"))
    AuditLog(engine).verify_chain()


def test_refusals_are_audited(lite: PolicyService, sqlite_engine: Engine, world: World) -> None:
    """A self-approval and an approval for an unknown request are refused and audited with their rule."""
    refill = world.request(kind=RequestKind.REFILL,
                           account="company", source_wallet="cold", initiator="olga", amount_minor=BTC // 10)
    lite.submit(refill, now=NOW)
    with pytest.raises(SegregationOfDuties):
        lite.approve(world.approve("olga", refill), now=NOW)
    with pytest.raises(ApprovalRefused):
        lite.approve(world.approve("bob", world.request(nonce="99" * 16)), now=NOW)
    rules = [payload["rule"] for payload in events(sqlite_engine, "policy.refused")]
    assert ["sod.self_approval", "approval.request_mismatch"] == rules


def test_coordinator_velocity_counts_attested_withdrawals(service: PolicyService, world: World) -> None:
    """The coordinator's own view of velocity refuses the third of three 4 BTC withdrawals."""
    service.add_whitelist("acct1", "BTC", "bcrt1qdestination", by="client:acct1", now=NOW.replace(day=25))
    for index in range(3):
        request = world.request(amount_minor=4 * BTC, nonce=f"{index:02x}" * 16)
        service.submit(request, now=NOW)
        for approval in world.tier2_approvals(request):
            decision = service.approve(approval, now=NOW)
        if index < 2:
            service.attest(request.digest_hex, now=NOW)
        else:
            assert ("velocity.client",) == decision.refusing_rules


def test_policy_change_needs_other_admins(service: PolicyService, engine: Engine, world: World) -> None:
    """A proposal signed by its proposer alone stays inactive; two other admins activate it."""
    text = service.active_policy().text.replace("86400", "172800")
    proposal = service.propose(text, None, proposed_by="erin", now=NOW)
    old_hash = service.active_policy().hash
    service.add_signature(proposal.version, sign_activation(world.keys["erin"], proposal, "erin"), now=NOW)
    service.add_signature(proposal.version, sign_activation(world.keys["frank"], proposal, "frank"), now=NOW)
    with pytest.raises(PolicyQuorumRefused):
        service.activate(proposal.version, now=NOW)
    assert old_hash == service.active_policy().hash
    service.add_signature(proposal.version, sign_activation(world.keys["gina"], proposal, "gina"), now=NOW)
    activated = service.activate(proposal.version, now=NOW)
    assert (proposal.policy_hash, 2) == (service.active_policy().hash, service.active_version()[0])
    assert activated.hash == proposal.policy_hash
    assert ["frank", "gina"] == events(engine, "policy.activated")[-1]["signed_by"]


def test_malformed_proposal_rejected_and_old_policy_stays(lite: PolicyService, sqlite_engine: Engine) -> None:
    """A policy set with a syntax error is rejected with its line, audited, and the old set stays active."""
    old = lite.active_policy().hash
    broken = lite.active_policy().text.replace("when { context.halted };", "when { context.halted ;")
    with pytest.raises(MalformedPolicy) as caught:
        lite.propose(broken, None, proposed_by="erin", now=NOW)
    assert caught.value.line is not None
    assert old == lite.active_policy().hash
    assert caught.value.line == events(sqlite_engine, "policy.rejected")[0]["line"]
    with sqlite_engine.connect() as conn:
        assert 1 == conn.execute(sa.text("SELECT count(*) FROM policy_versions")).scalar()


def test_non_admin_cannot_propose(lite: PolicyService) -> None:
    """Only a policy admin may propose a policy set."""
    with pytest.raises(PolicyRefused) as caught:
        lite.propose(lite.active_policy().text, None, proposed_by="bob", now=NOW)
    assert "policy.proposer" == caught.value.rule


def test_frozen_account_refused_by_coordinator(lite: PolicyService, world: World) -> None:
    """A freeze recorded in the service refuses the account's withdrawals."""
    lite.add_whitelist("acct1", "BTC", "bcrt1qdestination", by="client:acct1", now=NOW.replace(day=25))
    lite.freeze("acct1", by="dave", now=NOW)
    assert ("freeze",) == lite.submit(world.request(), now=NOW).refusing_rules


def test_signed_audit_checkpoint(lite: PolicyService, sqlite_engine: Engine, hsm: Hsm) -> None:
    """An HSM-signed checkpoint verifies, and catches a tail cut from the audit chain."""
    checkpoint = lite.checkpoint(now=NOW)
    public_key = hsm.public_key("coffer-audit-checkpoint")
    audit = AuditLog(sqlite_engine)
    assert checkpoint.seq <= verify_checkpoint(checkpoint, public_key, audit)
    assert [checkpoint] == list(lite.checkpoints())
    forged = type(checkpoint)(checkpoint.seq + 1, checkpoint.head_digest, checkpoint.at_s, checkpoint.signature)
    with pytest.raises(CheckpointInvalid):
        verify_checkpoint(forged, public_key)
    with sqlite_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_events WHERE seq >= :seq"), {"seq": checkpoint.seq})
    with pytest.raises(CheckpointInvalid):
        verify_checkpoint(checkpoint, public_key, audit)


def test_time_lock_in_service(lite: PolicyService, world: World) -> None:
    """An address whitelisted moments ago is refused until its time lock has passed."""
    lite.add_whitelist("acct1", "BTC", "bcrt1qdestination", by="client:acct1", now=NOW)
    request = world.request(expires_at_s=NOW_S + 3 * DAY_S)
    assert ("whitelist.time_lock",) == lite.submit(request, now=NOW).refusing_rules
    assert lite.decide(request.digest_hex, now=LATER).allowed


def test_credentials_and_periodic_checkpoint(lite: PolicyService, sqlite_engine: Engine) -> None:
    """A further credential is stored with its operator; checkpoints are signed only when due."""
    lite.add_credential("bob", "webauthn", b"\x01\x02", by="root", now=NOW)
    assert b"\x01\x02" == lite.operators().get("bob").key_for("webauthn")
    first = lite.checkpoint_if_due(now=NOW, every_events=5)
    assert first is not None
    assert lite.checkpoint_if_due(now=NOW, every_events=5) is None
    assert [first] == list(lite.checkpoints())


def test_migration_matches_table_definitions(engine: Engine) -> None:
    """Every policy table the migrations create has exactly the columns the code defines."""
    from coffer.policy import tables

    inspector = sa.inspect(engine)
    for table in (tables.operators, tables.policy_versions, tables.policy_signatures, tables.requests,
                  tables.approvals, tables.decisions, tables.attestations, tables.whitelist,
                  tables.frozen_accounts, tables.credentials, tables.checkpoints):
        assert {c.name for c in table.columns} == {c["name"] for c in inspector.get_columns(table.name)}
