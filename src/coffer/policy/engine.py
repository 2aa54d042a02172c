"""The policy decision: a pure function of a request, the state passed in, and the time.

`CompiledPolicy.decide(request, context, now)` evaluates the Cedar policy set (one Cedar request
per decision; `decide_batch` evaluates many in one call) and reads the annotations of the
policies that fired (see data/default.cedar for the conventions): hard forbids refuse, `@route`
forces cold custody, `@approvers`/`@security_officers` name the approvals that lift a rule.
This module never reads the clock, the database or the HSM.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any

import cedarpy

from coffer.canonical import canonical_digest
from coffer.invariant import invariant
from coffer.policy.approval import VerifiedApproval
from coffer.policy.errors import MalformedPolicy
from coffer.policy.locate import locate_token, split_statements
from coffer.policy.request import ASSETS, RequestKind, WithdrawalRequest
from coffer.policy.roles import Role

__all__ = ["Route", "ApprovalRequirement", "Decision", "DecisionContext", "PastTransfer", "Rule",
           "CompiledPolicy", "compile_policy", "default_policy", "default_policy_text", "with_time_locks",
           "default_schema_text", "policy_hash", "epoch_s", "VELOCITY_WINDOW_S", "POLICY_BYTES_MAX",
           "LONG_MAX"]

VELOCITY_WINDOW_S = 24 * 3600
POLICY_BYTES_MAX = 256 * 1024
POLICIES_MAX = 1000
HISTORY_MAX = 1_000_000
LONG_MAX = 1 << 62  # context values are clamped here, so sums of two never overflow Cedar's Long
POLICY_HASH_TAG = "coffer/policy-set/v1"
_RULE_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[A-Za-z0-9_]+)*$")
_ANNOTATIONS = frozenset({"id", "route", "approvers", "security_officers"})
COUNT_MAX = 16


class Route(enum.Enum):
    HOT = "hot"
    COLD = "cold"


def epoch_s(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return int(moment.timestamp())


@dataclass(frozen=True, slots=True, order=True)
class ApprovalRequirement:
    approvers: int = 0
    security_officers: int = 0

    def satisfied_by(self, present: ApprovalRequirement) -> bool:
        return present.approvers >= self.approvers and present.security_officers >= self.security_officers


@dataclass(frozen=True, slots=True)
class Rule:
    """One Cedar policy as the engine reads it."""

    rule_id: str
    effect: str
    route_cold: bool
    requirement: ApprovalRequirement
    order: int = 0
    hard: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        # A forbid that neither routes nor asks for approvals refuses outright.
        hard = self.effect == "forbid" and not self.route_cold and self.requirement == ApprovalRequirement()
        object.__setattr__(self, "hard", hard)


@dataclass(frozen=True, slots=True)
class PastTransfer:
    """A withdrawal already decided (coordinator) or signed (signer), for the velocity windows."""

    at_s: int
    account: str
    asset: str
    amount_minor: int
    route: Route
    kind: RequestKind = RequestKind.CLIENT_WITHDRAWAL


@dataclass(frozen=True, slots=True)
class DecisionContext:
    """The state a decision depends on, passed in by the caller."""

    halted: bool
    account_frozen: bool
    whitelisted_at_s: int | None  # when (account, asset, destination) was whitelisted; None = never
    hot_balance_minor: int
    history: Sequence[PastTransfer] = ()
    approvals: Sequence[VerifiedApproval] = ()
    client_key_at_s: int | None = None  # when the client key that signed the entry was pinned; None = unsigned


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome: `allowed` means it may be attested and signed now."""

    request_digest: bytes
    policy_hash: str
    allowed: bool
    refused: bool                         # a hard rule fired: approvals cannot help
    route: Route
    required_approvals: ApprovalRequirement
    present_approvals: ApprovalRequirement
    reasons: tuple[str, ...]              # rule ids that fired, hard ones first
    refusing_rules: tuple[str, ...] = field(default=())   # the hard rules that refused
    pending_rules: tuple[str, ...] = field(default=())    # rules whose approvals are not yet present


def policy_hash(policies_text: str, schema_text: str) -> str:
    return canonical_digest({"policies": policies_text, "schema": schema_text}, tag=POLICY_HASH_TAG).hex()


def _to_policy_units(amount_minor: int, asset: str, *, round_up: bool) -> int:
    unit = ASSETS[asset]
    value = -(-amount_minor // unit) if round_up else amount_minor // unit
    return min(value, LONG_MAX)


def _velocity(history: Sequence[PastTransfer], request: WithdrawalRequest, now_s: int) -> tuple[int, int, int]:
    since = now_s - VELOCITY_WINDOW_S
    client = asset = hot = 0
    for past in history:
        if past.at_s <= since or past.asset != request.asset or past.kind is not RequestKind.CLIENT_WITHDRAWAL:
            continue
        asset += past.amount_minor
        if past.account == request.account:
            client += past.amount_minor
        if past.route is Route.HOT:
            hot += past.amount_minor
    return client, asset, hot


def present_approvals(approvals: Iterable[VerifiedApproval], initiator: str) -> ApprovalRequirement:
    seen: set[str] = set()
    approvers = officers = 0
    for approval in approvals:
        invariant(approval.operator_id != initiator, "a verified approval came from the initiator")
        if approval.operator_id in seen:
            continue
        seen.add(approval.operator_id)
        if approval.role is Role.APPROVER:
            approvers += 1
        elif approval.role is Role.SECURITY_OFFICER:
            officers += 1
    return ApprovalRequirement(approvers, officers)


def cedar_request(request: WithdrawalRequest, context: DecisionContext, now_s: int) -> dict[str, Any]:
    """The Cedar request for one decision (principal, action, resource, context)."""
    if len(context.history) > HISTORY_MAX:
        raise ValueError("velocity history too long")
    client, asset_total, hot = _velocity(context.history, request, now_s)
    age = 0 if context.whitelisted_at_s is None else max(0, now_s - context.whitelisted_at_s)
    key_age = 0 if context.client_key_at_s is None else max(0, now_s - context.client_key_at_s)
    if request.initiator.startswith("client:"):
        principal = {"type": "Client", "id": request.account}
    else:
        principal = {"type": "Operator", "id": request.initiator}
    asset = request.asset
    return {
        "principal": principal,
        "action": {"type": "Action", "id": "withdraw"},
        "resource": {"type": "Account", "id": request.account},
        "context": {
            "kind": request.kind.value, "asset": asset, "account": request.account,
            "amount": _to_policy_units(request.amount_minor, asset, round_up=True),
            "source_wallet": request.source_wallet, "fee_policy": request.fee_policy,
            "now_s": min(now_s, LONG_MAX), "expires_s": min(request.expires_at_s, LONG_MAX),
            "halted": context.halted, "account_frozen": context.account_frozen,
            "whitelisted": context.whitelisted_at_s is not None, "whitelist_age_s": min(age, LONG_MAX),
            "whitelist_key_age_s": min(key_age, LONG_MAX),
            "client_outflow_24h": _to_policy_units(client, asset, round_up=True),
            "asset_outflow_24h": _to_policy_units(asset_total, asset, round_up=True),
            "hot_outflow_24h": _to_policy_units(hot, asset, round_up=True),
            "hot_balance": _to_policy_units(max(0, context.hot_balance_minor), asset, round_up=False),
        },
    }


def _annotation_count(annotations: dict[str, Any], name: str, where: tuple[int | None, int | None],
                      rule_id: str) -> int:
    raw = annotations.get(name)
    if raw is None:
        return 0
    if not isinstance(raw, str) or not raw.isdigit() or int(raw) > COUNT_MAX:
        raise MalformedPolicy(f"@{name} must be a whole number 0..{COUNT_MAX}", line=where[0], column=where[1],
                              policy_id=rule_id)
    return int(raw)


def _read_rules(text: str, policy_json: dict[str, Any], positions: list[tuple[int, int]]) -> dict[str, Rule]:
    if policy_json.get("templates"):
        raise MalformedPolicy("templates are not allowed in a withdrawal policy")
    static = policy_json.get("staticPolicies", {})
    rules: dict[str, Rule] = {}
    seen: set[str] = set()
    for index in range(len(static)):
        cedar_id = f"policy{index}"
        policy = static.get(cedar_id)
        where: tuple[int | None, int | None] = positions[index] if index < len(positions) else (None, None)
        if policy is None:
            raise MalformedPolicy("policies must not carry explicit ids", line=where[0], column=where[1])
        annotations = policy.get("annotations", {})
        rule_id = annotations.get("id")
        if not isinstance(rule_id, str) or not _RULE_ID.fullmatch(rule_id):
            raise MalformedPolicy('every policy needs an @id("area.name") annotation', line=where[0],
                                  column=where[1])
        if rule_id in seen:
            raise MalformedPolicy(f"@id {rule_id!r} used twice", line=where[0], column=where[1], policy_id=rule_id)
        unknown = set(annotations) - _ANNOTATIONS
        if unknown:
            raise MalformedPolicy(f"unknown annotation @{sorted(unknown)[0]}", line=where[0], column=where[1],
                                  policy_id=rule_id)
        route = annotations.get("route")
        if route not in (None, "cold"):
            raise MalformedPolicy('@route may only be "cold"', line=where[0], column=where[1], policy_id=rule_id)
        requirement = ApprovalRequirement(_annotation_count(annotations, "approvers", where, rule_id),
                                          _annotation_count(annotations, "security_officers", where, rule_id))
        effect = str(policy.get("effect"))
        if effect == "permit" and (route is not None or requirement != ApprovalRequirement()):
            raise MalformedPolicy("only forbid policies may carry @route or approvals", line=where[0],
                                  column=where[1], policy_id=rule_id)
        seen.add(rule_id)
        rules[cedar_id] = Rule(rule_id, effect, route == "cold", requirement, index)
    return rules


def _parse_error(text: str, message: str) -> MalformedPolicy:
    statements, trailing = split_statements(text)
    for statement in statements:
        try:
            cedarpy.PolicySet.from_str(statement.text)
        except ValueError as exc:
            line, column = locate_token(text, statement, str(exc))
            return MalformedPolicy(f"does not parse: {exc}", line=line, column=column)
    if trailing is not None:
        return MalformedPolicy(f"does not parse (statement without `;`?): {message}", line=trailing.line,
                               column=trailing.column)
    return MalformedPolicy(f"does not parse: {message}")


def _check_size(text: str, what: str) -> None:
    if not isinstance(text, str):
        raise MalformedPolicy(f"{what} must be text")
    if len(text.encode("utf-8", errors="replace")) > POLICY_BYTES_MAX:
        raise MalformedPolicy(f"{what} larger than {POLICY_BYTES_MAX} bytes")
    if "\x00" in text:
        raise MalformedPolicy(f"{what} contains a NUL character")


def compile_policy(policies_text: str, schema_text: str) -> CompiledPolicy:
    """Parse and validate a policy set against its schema. Raises MalformedPolicy with a location."""
    _check_size(policies_text, "policy set")
    _check_size(schema_text, "schema")
    try:
        schema = cedarpy.Schema.from_str(schema_text)
    except ValueError as exc:
        raise MalformedPolicy(f"schema does not parse: {exc}") from None
    try:
        policy_set = cedarpy.PolicySet.from_str(policies_text)
        policy_json = json.loads(cedarpy.policies_to_json_str(policies_text))
    except (ValueError, RecursionError) as exc:
        raise _parse_error(policies_text, str(exc)) from None
    statements, _ = split_statements(policies_text)
    positions = [(s.line, s.column) for s in statements]
    if len(policy_set) > POLICIES_MAX:
        raise MalformedPolicy(f"more than {POLICIES_MAX} policies")
    rules = _read_rules(policies_text, policy_json, positions)
    validation = cedarpy.validate_policies(policies_text, schema)
    if not validation.validation_passed:
        error = validation.errors[0]
        match = re.fullmatch(r"policy(\d+)", error.policy_id or "")
        rule = rules.get(error.policy_id)
        if match and int(match.group(1)) < len(positions):
            line, column = positions[int(match.group(1))]
            raise MalformedPolicy(f"does not validate: {error.error}", line=line, column=column,
                                  policy_id=rule.rule_id if rule else error.policy_id)
        raise MalformedPolicy(f"does not validate: {error.error}")
    if not any(rule.effect == "permit" for rule in rules.values()):
        raise MalformedPolicy("the policy set permits nothing")
    return CompiledPolicy(policies_text, schema_text, policy_set, schema, rules)


class CompiledPolicy:
    """A parsed, validated policy set, identified by its hash. Immutable; safe to share."""

    __slots__ = ("text", "schema_text", "hash", "_policy_set", "_schema", "_rules", "_entities")

    def __init__(self, text: str, schema_text: str, policy_set: Any, schema: Any, rules: dict[str, Rule]) -> None:
        self.text = text
        self.schema_text = schema_text
        self.hash = policy_hash(text, schema_text)
        self._policy_set = policy_set
        self._schema = schema
        self._rules = rules
        self._entities = cedarpy.Entities.from_json_str("[]")

    def __repr__(self) -> str:
        return f"CompiledPolicy(hash={self.hash[:16]}..., rules={len(self._rules)})"

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(self._rules.values())

    def decide(self, request: WithdrawalRequest, context: DecisionContext, now: datetime) -> Decision:
        """Evaluate one request. Pure: the same arguments always give the same decision."""
        return self.decide_batch([(request, context)], now)[0]

    def decide_batch(self, items: Sequence[tuple[WithdrawalRequest, DecisionContext]], now: datetime
                     ) -> list[Decision]:
        """Evaluate many requests in one Cedar call (each on its own context)."""
        now_s = epoch_s(now)
        cedar_requests = [cedar_request(request, context, now_s) for request, context in items]
        results = cedarpy.is_authorized_batch(cedar_requests, self._policy_set, self._entities)
        invariant(len(results) == len(items), "Cedar returned a different number of results")
        return [self._interpret(request, context, result) for (request, context), result in zip(items, results,
                                                                                                strict=True)]

    def _interpret(self, request: WithdrawalRequest, context: DecisionContext, result: Any) -> Decision:
        present = present_approvals(context.approvals, request.initiator)
        digest = request.digest()
        if result.diagnostics.errors:
            # An erroring forbid is skipped by Cedar; treating that as "not fired" would fail open.
            return self._refusal(digest, present, ("policy.error",))
        fired = sorted((self._rules[cedar_id] for cedar_id in result.diagnostics.reasons if cedar_id in self._rules),
                       key=lambda rule: rule.order)
        invariant(len(fired) == len(result.diagnostics.reasons), "Cedar named a policy the engine does not know")
        if result.allowed:
            return Decision(digest, self.hash, True, False, _initial_route(request), ApprovalRequirement(),
                            present, tuple(rule.rule_id for rule in fired))
        forbids = [rule for rule in fired if rule.effect == "forbid"]
        if not forbids:
            return self._refusal(digest, present, ("policy.no_permit",))
        hard = tuple(rule.rule_id for rule in forbids if rule.hard)
        soft = [rule for rule in forbids if not rule.hard]
        route_rules = tuple(rule.rule_id for rule in soft if rule.route_cold)
        route = Route.COLD if route_rules or request.source_wallet == "cold" else Route.HOT
        if request.source_wallet == "hot" and route_rules:
            hard = hard + route_rules  # the request insists on the hot wallet, the policy says no
        required = ApprovalRequirement(max((r.requirement.approvers for r in soft), default=0),
                                       max((r.requirement.security_officers for r in soft), default=0))
        reasons = tuple(r.rule_id for r in forbids if r.hard) + tuple(r.rule_id for r in soft)
        pending = tuple(r.rule_id for r in soft if not r.requirement.satisfied_by(present))
        refused = bool(hard)
        allowed = not refused and not pending
        invariant(allowed == (not refused and required.satisfied_by(present)), "approval requirement mismatch")
        return Decision(digest, self.hash, allowed, refused, route, required, present, reasons, hard, pending)

    def _refusal(self, digest: bytes, present: ApprovalRequirement, rules: tuple[str, ...]) -> Decision:
        return Decision(digest, self.hash, False, True, Route.COLD, ApprovalRequirement(), present, rules, rules)


def _initial_route(request: WithdrawalRequest) -> Route:
    return Route.COLD if request.source_wallet == "cold" else Route.HOT


_TIME_LOCK_RULE = re.compile(r'(@id\("whitelist\.time_lock"\).*?\};)', re.DOTALL)


def with_time_locks(policies_text: str, *, full_s: int, signed_s: int) -> str:
    """The policy text with the whitelist time locks set to `full_s` (unsigned entries, and the age a
    client key needs) and `signed_s` (entries signed by a pinned client key). Adopting the result is a
    policy change like any other: it needs the administrators' quorum."""
    if not 0 <= signed_s <= full_s <= LONG_MAX:
        raise MalformedPolicy("time locks must satisfy 0 <= signed <= full")
    match = _TIME_LOCK_RULE.search(policies_text)
    if match is None:
        raise MalformedPolicy('no @id("whitelist.time_lock") rule to set')
    rule = match.group(1).replace("86400", "\x00").replace("3600", str(signed_s)).replace("\x00", str(full_s))
    return policies_text[:match.start(1)] + rule + policies_text[match.end(1):]


def default_policy_text() -> str:
    return resources.files("coffer.policy").joinpath("data/default.cedar").read_text(encoding="utf-8")


def default_schema_text() -> str:
    return resources.files("coffer.policy").joinpath("data/schema.cedarschema").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def default_policy() -> CompiledPolicy:
    """The shipped default policy set, compiled."""
    return compile_policy(default_policy_text(), default_schema_text())
