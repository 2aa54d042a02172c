"""Each attack on the withdrawal path, refused with a typed reason naming the rule, and nothing signed."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from coffer.policy import (
    AlreadySigned,
    ApprovalRefused,
    ApprovalsMissing,
    AttestationRefused,
    PolicyQuorumRefused,
    PolicyRefused,
    RequestKind,
    Role,
    Route,
    SegregationOfDuties,
    attest_decision,
    check_quorum,
    compile_policy,
    sign_activation,
    verify_approvals,
)
from coffer.policy.attestation import SignedDecision
from coffer.policy.engine import default_schema_text
from coffer.policy.request import WithdrawalRequest
from coffer.policy.versions import PolicyProposal
from coffer.testing import make_token

from .conftest import BTC, DAY_S, NOW, NOW_S, Coordinator, Signer, World, make_signer, signer_facts


def assert_refused(signer: Signer, request, attestation, error: type[PolicyRefused], rule: str, now=NOW) -> None:
    with pytest.raises(error) as caught:
        signer.sign(request, attestation, now=now)
    assert rule == caught.value.rule
    assert request.digest() not in signer.signed
    assert not signer.history.contains(request.digest())


def company_refill(world: World, **overrides) -> object:
    fields = dict(kind=RequestKind.REFILL, account="company", source_wallet="cold", initiator="olga",
                  amount_minor=BTC // 10, destination="bcrt1qhotwallet")
    fields.update(overrides)
    return world.request(**fields)


def test_self_approval(world: World, coordinator: Coordinator, cold_signer: Signer) -> None:
    """An initiator who also holds the approver role approves their own refill: refused everywhere."""
    request = company_refill(world)
    own = world.approve("olga", request)
    with pytest.raises(SegregationOfDuties) as caught:
        verify_approvals(request, [own], world.registry, now_s=NOW_S)
    assert "sod.self_approval" == caught.value.rule
    forged = coordinator.attest_anything(request, (own,), route=Route.COLD,
                                         facts=world.facts(world.context(hot_balance_minor=BTC // 10)))
    assert_refused(cold_signer, request, forged, SegregationOfDuties, "sod.self_approval")


def test_approval_replayed_on_another_request(world: World, coordinator: Coordinator, hot_signer: Signer) -> None:
    """An approval of one request is attached to a different request (same amount, other destination)."""
    original = world.request(amount_minor=2_000_000)
    other = world.request(amount_minor=2_000_000, destination="bcrt1qattacker", nonce="11" * 16)
    replayed = (world.approve("bob", original),)
    with pytest.raises(ApprovalRefused) as caught:
        verify_approvals(other, replayed, world.registry, now_s=NOW_S)
    assert "approval.request_mismatch" == caught.value.rule
    forged = coordinator.attest_anything(other, replayed)
    assert_refused(hot_signer, other, forged, ApprovalRefused, "approval.request_mismatch")


def test_expired_approval(world: World, coordinator: Coordinator, hot_signer: Signer) -> None:
    """An approval whose expiry has passed when the signer checks it."""
    request = world.request(amount_minor=2_000_000)
    approvals = (world.approve("bob", request, expires_at_s=NOW_S + 60),)
    attestation = coordinator.attest(request, approvals)
    later = NOW.replace(minute=5)
    assert_refused(hot_signer, request, attestation, ApprovalRefused, "approval.expired", now=later)


def test_approval_by_key_without_approver_role(world: World, coordinator: Coordinator, hot_signer: Signer) -> None:
    """A policy admin (no approver role) signs an approval claiming the approver role."""
    request = world.request(amount_minor=2_000_000)
    approvals = (world.approve("erin", request, Role.APPROVER),)
    forged = coordinator.attest_anything(request, approvals)
    assert_refused(hot_signer, request, forged, ApprovalRefused, "approval.role")


def test_approval_signed_by_unregistered_key(world: World, coordinator: Coordinator, hot_signer: Signer) -> None:
    """An approval in an approver's name but signed with a key that is not the registered one."""
    request = world.request(amount_minor=2_000_000)
    genuine = world.approve("bob", request)
    wrong_key = dataclasses.replace(genuine, proof=world.keys["erin"].sign(b"x" * 32))
    forged = coordinator.attest_anything(request, (wrong_key,))
    assert_refused(hot_signer, request, forged, ApprovalRefused, "approval.signature")


def test_too_few_approvals_for_tier(world: World, coordinator: Coordinator, cold_signer: Signer) -> None:
    """1.5 BTC needs two approvers and a security officer; one approver is not enough."""
    request = world.request(amount_minor=150_000_000)
    one = (world.approve("bob", request),)
    decision = world.decide(request, one)
    assert (False, False) == (decision.allowed, decision.refused)
    assert "approvals.tier2" in decision.pending_rules
    forged = coordinator.attest_anything(request, one, route=Route.COLD)
    assert_refused(cold_signer, request, forged, ApprovalsMissing, "approvals.tier2")


def test_forged_attestation(world: World, coordinator: Coordinator, hot_signer: Signer) -> None:
    """An attestation signed by another HSM key than the pinned one."""
    request = world.request()
    other_token = make_token()
    with other_token.open() as other_hsm:
        rogue = Coordinator(world, other_hsm).attest(request)
    assert_refused(hot_signer, request, rogue, AttestationRefused, "attestation.signature")


def test_mismatched_attestation(world: World, coordinator: Coordinator, cold_signer: Signer) -> None:
    """A genuine attestation whose statement was edited afterwards (route hot -> cold)."""
    request = world.request()
    genuine = coordinator.attest(request)
    edited = SignedDecision(dataclasses.replace(genuine.statement, route=Route.COLD), genuine.signature)
    assert_refused(cold_signer, request, edited, AttestationRefused, "attestation.signature")


def test_attestation_for_another_policy(world: World, coordinator: Coordinator, hot_signer: Signer) -> None:
    """The coordinator's HSM attests a decision made under a policy the signer did not pin."""
    request = world.request()
    forged = coordinator.attest_anything(request, policy_hash="ab" * 32)
    assert_refused(hot_signer, request, forged, AttestationRefused, "attestation.policy_mismatch")


def test_destination_changed_after_approval(world: World, coordinator: Coordinator, hot_signer: Signer) -> None:
    """The coordinator swaps the destination after approval and attestation."""
    request = world.request(amount_minor=2_000_000)
    approvals = (world.approve("bob", request),)
    attestation = coordinator.attest(request, approvals)
    changed = dataclasses.replace(request, destination="bcrt1qattacker")
    assert_refused(hot_signer, changed, attestation, AttestationRefused, "attestation.request_mismatch")
    # Re-attesting the changed request cannot help: the approvals are bound to the old digest.
    reattested = coordinator.attest_anything(changed, approvals)
    assert_refused(hot_signer, changed, reattested, ApprovalRefused, "approval.request_mismatch")


def test_policy_swap_without_admin_quorum(world: World, coordinator: Coordinator, hot_signer: Signer) -> None:
    """A lenient policy signed only by its proposer and one other admin, and attested anyway."""
    lenient_text = '@id("allow.all")\npermit (principal, action, resource);\n'
    lenient = compile_policy(lenient_text, default_schema_text())
    proposal = PolicyProposal(2, lenient.hash, "erin")
    signatures = [sign_activation(world.keys["erin"], proposal, "erin"),
                  sign_activation(world.keys["frank"], proposal, "frank"),
                  sign_activation(world.keys["bob"], proposal, "bob")]  # not a policy admin
    with pytest.raises(PolicyQuorumRefused) as caught:
        check_quorum(proposal, signatures, world.registry, quorum=2)
    assert "policy.quorum" == caught.value.rule
    request = world.request(destination="bcrt1qnotwhitelisted")
    decision = lenient.decide(request, world.context(whitelisted_at_s=None), NOW)
    assert decision.allowed
    swapped = attest_decision(coordinator.hsm, request, decision, (), world.facts(world.context(whitelisted_at_s=None)),
                              now_s=NOW_S)
    assert_refused(hot_signer, request, swapped, AttestationRefused, "attestation.policy_mismatch")


def test_splitting_to_evade_velocity(world: World, coordinator: Coordinator, cold_signer: Signer) -> None:
    """12 BTC split into three 4 BTC withdrawals: the signer's own record stops the third (10 BTC / 24 h)."""
    for index in range(3):
        request = world.request(amount_minor=4 * BTC, nonce=f"{index:02x}" * 16)
        approvals = world.tier2_approvals(request)
        attestation = coordinator.attest(request, approvals)  # the coordinator claims an empty history
        if index < 2:
            cold_signer.sign(request, attestation)
        else:
            assert_refused(cold_signer, request, attestation, PolicyRefused, "velocity.client")
    assert 2 == len(cold_signer.signed)


def test_splitting_small_amounts_on_hot_wallet(world: World, coordinator: Coordinator, hot_signer: Signer) -> None:
    """Small auto-approved hot withdrawals add up; past the hot window the hot co-signer refuses."""
    amount = 900_000  # below the auto-approval tier
    refused_at = None
    for index in range(260):
        request = world.request(amount_minor=amount, nonce=f"{index:032x}", account=f"acct{index % 7}",
                                initiator=f"client:acct{index % 7}")
        attestation = coordinator.attest(request, hot_balance_minor=100 * BTC)
        try:
            hot_signer.sign(request, attestation)
        except PolicyRefused as refusal:
            assert "velocity.hot" == refusal.rule
            assert not hot_signer.history.contains(request.digest())
            refused_at = index
            break
    assert refused_at is not None
    assert 2 * BTC >= amount * len(hot_signer.signed)


def test_non_whitelisted_address(world: World, coordinator: Coordinator, hot_signer: Signer) -> None:
    """A destination the signer never saw whitelisted, attested as whitelisted two days ago: the signer's own facts refuse."""
    request = world.request(destination="bcrt1qneverseen")
    decision = world.decide(request, whitelisted_at_s=None)
    assert ("whitelist.unlisted",) == decision.refusing_rules
    forged = coordinator.attest_anything(request, facts=world.facts(world.context(whitelisted_at_s=NOW_S - 2 * DAY_S)))
    assert_refused(hot_signer, request, forged, PolicyRefused, "whitelist.unlisted")


def test_time_locked_address(world: World, coordinator: Coordinator, hot_signer: Signer) -> None:
    """A destination the signer first saw an hour ago, attested as whitelisted three days ago: still time-locked."""
    request = world.request(destination="bcrt1qrecent")
    hot_signer.guard.receive_notices(notices_document(request), now=NOW - dt.timedelta(hours=1))
    assert ("whitelist.time_lock",) == world.decide(request, whitelisted_at_s=NOW_S - 3600).refusing_rules
    forged = coordinator.attest_anything(request, facts=world.facts(world.context(whitelisted_at_s=NOW_S - 3 * DAY_S)))
    assert_refused(hot_signer, request, forged, PolicyRefused, "whitelist.time_lock")
    assert world.decide(request, whitelisted_at_s=NOW_S - DAY_S).allowed


def notices_document(request: WithdrawalRequest) -> bytes:
    from coffer.canonical import canonical_json
    from coffer.keyholder.facts import WhitelistNotice, notices_json

    return canonical_json(notices_json([WhitelistNotice(request.account, request.asset, request.destination)]))


def test_frozen_account(world: World, coordinator: Coordinator, hot_signer: Signer) -> None:
    """A withdrawal from a frozen account, approved or not."""
    request = world.request(amount_minor=2_000_000)
    approvals = (world.approve("bob", request),)
    assert ("freeze",) == world.decide(request, approvals, account_frozen=True).refusing_rules
    forged = coordinator.attest_anything(request, approvals, facts=world.facts(world.context(account_frozen=True)))
    assert_refused(hot_signer, request, forged, PolicyRefused, "freeze")


def test_any_request_while_halted(world: World, coordinator: Coordinator, hot_signer: Signer,
                                  cold_signer: Signer) -> None:
    """While halted, nothing passes: not the policy, not a signer with a valid attestation."""
    request = world.request()
    assert "halt" in world.decide(request, halted=True).refusing_rules
    refill = company_refill(world)
    assert "halt" in world.decide(refill, (world.approve("bob", refill),), halted=True,
                                  hot_balance_minor=BTC // 10).refusing_rules
    attestation = coordinator.attest(request)
    hot_signer.halted = True
    assert_refused(hot_signer, request, attestation, PolicyRefused, "halt")
    hot_signer.halted = False
    hot_signer.sign(request, attestation)
    assert 1 == len(hot_signer.signed)


def test_signing_the_same_request_twice(world: World, coordinator: Coordinator, hot_signer: Signer) -> None:
    """A valid attestation replayed to the same signer a second time."""
    request = world.request()
    attestation = coordinator.attest(request)
    hot_signer.sign(request, attestation)
    with pytest.raises(AlreadySigned) as caught:
        hot_signer.sign(request, attestation)
    assert "guard.already_signed" == caught.value.rule
    assert 1 == len(hot_signer.signed)


def test_hot_attestation_to_cold_signer(world: World, coordinator: Coordinator, cold_signer: Signer) -> None:
    """A decision routed hot is presented to a cold signer."""
    request = world.request()
    assert_refused(cold_signer, request, coordinator.attest(request), AttestationRefused, "attestation.route")


def test_guard_with_sqlite_history_refuses_resign_after_restart(world: World, coordinator: Coordinator,
                                                                tmp_path) -> None:
    """A signer restarted on its own SQLite history still refuses to sign the same request again."""
    from coffer.policy import SignerGuard, SqliteSignedHistory

    request = world.request()
    attestation = coordinator.attest(request)
    for attempt in range(2):
        history = SqliteSignedHistory(tmp_path / "signer.sqlite")
        guard = SignerGuard(signer_id="hot-1", route=Route.HOT, attestation_public_key=coordinator.public_key,
                            operators=world.registry, policy=world.policy, history=history, facts=signer_facts(),
                            halted=lambda: False)
        if attempt == 0:
            assert request.digest() == guard.check(request, attestation, now=NOW).request_digest
        else:
            with pytest.raises(AlreadySigned):
                guard.check(request, attestation, now=NOW)
        history.close()


def test_honest_path_signs(world: World, coordinator: Coordinator, cold_signer: Signer) -> None:
    """A tier-2 cold withdrawal with the right approvals passes the guard and is signed once."""
    request = world.request(amount_minor=2 * BTC)
    signer = make_signer(world, coordinator.public_key, Route.COLD)
    assert b"signature" == signer.sign(request, coordinator.attest(request, world.tier2_approvals(request)))
    assert [request.digest()] == signer.signed


def test_splitting_within_one_batch(world: World, coordinator: Coordinator, cold_signer: Signer) -> None:
    """Three 4 BTC withdrawals in one cold batch: the batch is refused whole and nothing is recorded."""
    items = []
    for index in range(3):
        request = world.request(amount_minor=4 * BTC, nonce=f"{index + 10:02x}" * 16)
        items.append((request, coordinator.attest(request, world.tier2_approvals(request))))
    with pytest.raises(PolicyRefused) as caught:
        cold_signer.guard.check_batch(items, now=NOW)
    assert "velocity.client" == caught.value.rule
    assert not any(cold_signer.history.contains(request.digest()) for request, _ in items)
    assert 2 == len(cold_signer.guard.check_batch(items[:2], now=NOW))


def test_embedded_documents_round_trip(world: World, coordinator: Coordinator) -> None:
    """Requests and attestations embedded as JSON objects (signing bundles) parse back exactly."""
    from coffer.policy import request_from_json, signed_decision_from_json

    request = world.request()
    attestation = coordinator.attest(request)
    assert request == request_from_json(request.to_json())
    assert attestation == signed_decision_from_json(attestation.to_json())


def test_signer_refuses_policy_swap_without_quorum(world: World, hot_signer: Signer) -> None:
    """A signer asked to adopt a new policy set checks the admin quorum itself and keeps the old one."""
    text = world.policy.text.replace("86400", "3600")  # a weaker time lock
    weaker = compile_policy(text, default_schema_text())
    proposal = PolicyProposal(2, weaker.hash, "erin")
    own_and_one = [sign_activation(world.keys["erin"], proposal, "erin"),
                   sign_activation(world.keys["frank"], proposal, "frank")]
    with pytest.raises(PolicyQuorumRefused) as caught:
        hot_signer.guard.adopt_policy(weaker, proposal, own_and_one)
    assert "policy.quorum" == caught.value.rule
    assert world.policy.hash == hot_signer.guard.policy_hash
    forged_text = compile_policy(text.replace("3600", "60"), default_schema_text())
    quorum = own_and_one + [sign_activation(world.keys["gina"], proposal, "gina")]
    with pytest.raises(PolicyQuorumRefused) as caught:
        hot_signer.guard.adopt_policy(forged_text, proposal, quorum)
    assert "policy.hash_mismatch" == caught.value.rule
    assert ("frank", "gina") == hot_signer.guard.adopt_policy(weaker, proposal, quorum)
    assert (weaker.hash, 2) == (hot_signer.guard.policy_hash, hot_signer.guard.policy_version)
