"""The pure decision: tiers, routing, limits, hot float, velocity, batch evaluation."""

from __future__ import annotations

import cedarpy

from coffer.policy import ApprovalRequirement, PastTransfer, RequestKind, Role, Route, decide
from coffer.policy.engine import cedar_request

from .conftest import BTC, NOW, NOW_S, World


def test_small_hot_withdrawal_is_auto_approved(world: World) -> None:
    """0.005 BTC with a healthy hot float goes hot with no approval."""
    decision = world.decide(world.request(amount_minor=500_000))
    assert (True, Route.HOT, ApprovalRequirement()) == (decision.allowed, decision.route, decision.required_approvals)


def test_tier_one_needs_one_approver(world: World) -> None:
    """0.05 BTC needs one approver and stays hot."""
    request = world.request(amount_minor=5_000_000)
    pending = world.decide(request)
    assert (False, False, ("approvals.tier1",)) == (pending.allowed, pending.refused, pending.pending_rules)
    assert ApprovalRequirement(1, 0) == pending.required_approvals
    approved = world.decide(request, (world.approve("bob", request),))
    assert (True, Route.HOT) == (approved.allowed, approved.route)


def test_tier_two_needs_two_approvers_and_a_security_officer(world: World) -> None:
    """2 BTC goes cold and needs two approvers plus a security officer, all distinct."""
    request = world.request(amount_minor=2 * BTC)
    assert ApprovalRequirement(2, 1) == world.decide(request).required_approvals
    two = (world.approve("bob", request), world.approve("carol", request))
    assert not world.decide(request, two).allowed
    decision = world.decide(request, world.tier2_approvals(request))
    assert (True, Route.COLD) == (decision.allowed, decision.route)


def test_security_officer_does_not_count_as_approver(world: World) -> None:
    """A security officer's approval does not fill an approver slot."""
    request = world.request(amount_minor=5_000_000)
    decision = world.decide(request, (world.approve("dave", request, Role.SECURITY_OFFICER),))
    assert ("approvals.tier1",) == decision.pending_rules


def test_large_for_hot_routes_cold(world: World) -> None:
    """Above the hot per-transfer maximum the withdrawal goes cold and needs an approver."""
    decision = world.decide(world.request(amount_minor=20_000_000))
    assert (Route.COLD, ApprovalRequirement(1, 0)) == (decision.route, decision.required_approvals)
    assert "route.hot_max" in decision.reasons


def test_hot_float_too_low_routes_cold(world: World) -> None:
    """A small withdrawal the hot float cannot cover goes cold."""
    decision = world.decide(world.request(amount_minor=500_000), hot_balance_minor=100_000)
    assert (Route.COLD, ("route.hot_float",)) == (decision.route, decision.pending_rules)


def test_insisting_on_hot_when_policy_says_cold_is_refused(world: World) -> None:
    """A request that demands the hot wallet for an amount the hot wallet may not pay is refused."""
    decision = world.decide(world.request(amount_minor=20_000_000, source_wallet="hot"))
    assert (True, ("route.hot_max",)) == (decision.refused, decision.refusing_rules)


def test_per_transfer_limit(world: World) -> None:
    """Above 5 BTC in one transfer is refused whatever the approvals."""
    request = world.request(amount_minor=6 * BTC)
    decision = world.decide(request, world.tier2_approvals(request))
    assert ("limit.transfer.BTC",) == decision.refusing_rules


def test_velocity_window_counts_history_and_expires(world: World) -> None:
    """Past withdrawals inside 24 h count toward the client limit; older ones do not."""
    request = world.request(amount_minor=3 * BTC)
    approvals = world.tier2_approvals(request)
    recent = [PastTransfer(NOW_S - 3600, "acct1", "BTC", 4 * BTC, Route.COLD)] * 2
    assert ("velocity.client",) == world.decide(request, approvals, history=recent).refusing_rules
    old = [PastTransfer(NOW_S - 90_000, "acct1", "BTC", 4 * BTC, Route.COLD)] * 2
    assert world.decide(request, approvals, history=old).allowed
    others = [PastTransfer(NOW_S - 3600, "acct2", "BTC", 4 * BTC, Route.COLD)] * 2
    assert world.decide(request, approvals, history=others).allowed


def test_asset_velocity_across_clients(world: World) -> None:
    """All clients together may not take more than the asset window allows."""
    history = [PastTransfer(NOW_S - 60, f"c{i}", "BTC", 5 * BTC, Route.COLD) for i in range(20)]
    request = world.request(amount_minor=2_000_000)
    assert "velocity.asset" in world.decide(request, history=history).refusing_rules


def test_expired_request_refused(world: World) -> None:
    """A request past its own expiry is refused."""
    assert ("request.expired",) == world.decide(world.request(expires_at_s=NOW_S - 1)).refusing_rules


def test_refill_needs_low_hot_float_and_an_approver(world: World) -> None:
    """A refill is a company request from cold: allowed only below the hot minimum, with an approver."""
    refill = world.request(kind=RequestKind.REFILL, account="company", source_wallet="cold", initiator="ivan",
                           amount_minor=BTC)
    approvals = (world.approve("bob", refill),)
    decision = world.decide(refill, approvals, hot_balance_minor=BTC // 10)
    assert (True, Route.COLD) == (decision.allowed, decision.route)
    full = world.decide(refill, approvals, hot_balance_minor=3 * BTC)
    assert ("float.refill_not_needed",) == full.refusing_rules
    assert "approvals.company" in world.decide(refill, hot_balance_minor=BTC // 10).pending_rules


def test_sweep_needs_high_hot_float(world: World) -> None:
    """A sweep leaves the hot wallet for cold only above the hot maximum, never below the minimum."""
    sweep = world.request(kind=RequestKind.SWEEP, account="company", source_wallet="hot", initiator="ivan",
                          amount_minor=2 * BTC)
    approvals = world.tier2_approvals(sweep)
    decision = world.decide(sweep, approvals, hot_balance_minor=8 * BTC)
    assert (True, Route.HOT) == (decision.allowed, decision.route)
    assert ("float.sweep_not_needed",) == world.decide(sweep, approvals, hot_balance_minor=4 * BTC).refusing_rules


def test_client_may_not_use_company_account(world: World) -> None:
    """A client withdrawal naming the company account is refused."""
    request = world.request(account="company", initiator="ivan")
    assert "request.account" in world.decide(request).refusing_rules


def test_ether_amounts_in_gwei(world: World) -> None:
    """Ether is judged in gwei: 1 wei over the per-transfer limit still counts as over."""
    limit_wei = 100 * 10**18
    request = world.request(asset="ETH", amount_minor=limit_wei + 1, destination="0xabc")
    assert "limit.transfer.ETH" in world.decide(request, world.tier2_approvals(request)).refusing_rules
    small = world.request(asset="ETH", amount_minor=10**17, destination="0xabc")
    assert world.decide(small, hot_balance_minor=10**18).allowed


def test_batch_equals_one_at_a_time(world: World) -> None:
    """decide_batch gives the same decisions as deciding each request alone."""
    items = [(world.request(amount_minor=amount, nonce=f"{amount:032x}"), world.context())
             for amount in (1_000, 5_000_000, 2 * BTC, 6 * BTC, 20_000_000)]
    assert [world.policy.decide(r, c, NOW) for r, c in items] == world.policy.decide_batch(items, NOW)


def test_module_level_decide_uses_default_policy(world: World) -> None:
    """coffer.policy.decide(request, context, now) is the default policy's decision."""
    request = world.request()
    assert world.policy.decide(request, world.context(), NOW) == decide(request, world.context(), NOW)


def test_context_matches_schema(world: World) -> None:
    """The context the engine builds is exactly what the shipped schema declares."""
    schema = cedarpy.Schema.from_str(world.policy.schema_text)
    cedar = cedar_request(world.request(), world.context(), NOW_S)
    result = cedarpy.is_authorized(cedar, world.policy.text, [], schema=schema)
    assert [] == result.diagnostics.errors
    assert result.allowed


def test_erroring_rule_fails_closed(world: World) -> None:
    """A forbid that errors while evaluating (Long overflow) refuses instead of being skipped."""
    from coffer.policy import compile_policy

    text = ('@id("withdraw.kinds")\npermit (principal, action, resource);\n'
            '@id("limit.weird")\nforbid (principal, action, resource)\n'
            'when { context.amount * 4611686018427387904 > 0 };\n')
    policy = compile_policy(text, world.policy.schema_text)
    decision = policy.decide(world.request(), world.context(), NOW)
    assert (False, True, ("policy.error",)) == (decision.allowed, decision.refused, decision.refusing_rules)
