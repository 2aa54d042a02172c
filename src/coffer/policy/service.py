"""The coordinator's policy service: the pure core wrapped in storage, the HSM and the audit log.

Operators, policy versions (k-of-n activation), the destination whitelist (with a hook per new
address, e.g. the mail to the client), freezes, requests, approvals, decisions and the HSM
attestations. Every decision, approval, refusal and policy change is an audit event, written in
the same transaction as the change. It never holds an operator's private key.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from coffer.audit import AuditLog
from coffer.db import is_postgres
from coffer.errors import NotFound
from coffer.hsm import Hsm
from coffer.policy import tables as t
from coffer.policy.approval import (
    Approval,
    ApprovalVerifier,
    check_initiator,
    default_verifiers,
    parse_approval,
    verify_approvals,
)
from coffer.policy.attestation import (
    ATTESTATION_KEY_LABEL,
    ATTESTATION_TTL_S,
    AttestedFacts,
    SignedDecision,
    attest_decision,
    ensure_attestation_key,
    parse_signed_decision,
)
from coffer.policy.checkpoint import CHECKPOINT_KEY_LABEL, AuditCheckpoint, sign_checkpoint
from coffer.policy.engine import (
    VELOCITY_WINDOW_S,
    CompiledPolicy,
    Decision,
    DecisionContext,
    PastTransfer,
    Route,
    compile_policy,
    default_policy_text,
    default_schema_text,
    epoch_s,
)
from coffer.policy.errors import (
    ApprovalRefused,
    MalformedPolicy,
    PolicyError,
    PolicyRefused,
)
from coffer.policy.request import RequestKind, WithdrawalRequest, parse_request
from coffer.policy.roles import ED25519_SCHEME, Operator, OperatorRegistry, Role
from coffer.policy.versions import AdminSignature, PolicyProposal, check_quorum

__all__ = ["PolicyService", "WhitelistEntry", "SYSTEM_ACTOR", "CLOSE_REASONS"]

SYSTEM_ACTOR = "system"
CLOSE_REASONS = frozenset({"cancelled_by_client", "cancelled_by_exchange"})
_SCHEME = re.compile(r"^[a-z0-9-]{1,32}$")


@dataclass(frozen=True, slots=True)
class WhitelistEntry:
    account: str
    asset: str
    destination: str
    added_at_s: int
    added_by: str
    unlocks_at_s: int


class PolicyService:
    """Storage-backed policy decisions for the coordinator. Holds no operator key."""

    def __init__(self, engine: Engine, *, hsm: Hsm | None, halted: Callable[[], bool],
                 hot_balance: Callable[[str], int], admin_quorum: int = 2,
                 attestation_label: str = ATTESTATION_KEY_LABEL, attestation_ttl_s: int = ATTESTATION_TTL_S,
                 audit: AuditLog | None = None, verifiers: Mapping[str, ApprovalVerifier] | None = None) -> None:
        self._engine = engine
        self._hsm = hsm
        self._halted = halted
        self._hot_balance = hot_balance
        self._admin_quorum = admin_quorum
        self._attestation_label = attestation_label
        self._attestation_ttl_s = attestation_ttl_s
        self._audit = audit or AuditLog(engine)
        self._compiled: dict[str, CompiledPolicy] = {}
        self._verifiers = default_verifiers() if verifiers is None else verifiers
        self._attest_lock = threading.Lock()
        self.whitelist_hooks: list[Callable[[WhitelistEntry], None]] = []

    # -- audit ----------------------------------------------------------------------------
    def _event(self, conn: Connection, actor: str, event: str, payload: dict[str, Any], now: datetime) -> None:
        self._audit.append(actor, event, payload, at=now, connection=conn)

    def _refused(self, actor: str, refusal: PolicyRefused, subject: dict[str, Any], now: datetime) -> None:
        with self._engine.begin() as conn:
            self._event(conn, actor, "policy.refused", dict(subject, rule=refusal.rule, message=str(refusal)), now)

    # -- operators ------------------------------------------------------------------------
    def add_operator(self, operator: Operator, *, by: str, now: datetime) -> None:
        roles = ",".join(sorted(r.value for r in operator.roles))
        with self._engine.begin() as conn:
            exists = conn.execute(sa.select(t.operators.c.operator_id).where(
                sa.or_(t.operators.c.operator_id == operator.operator_id,
                       t.operators.c.ed25519_public_key == operator.ed25519_public_key.hex()))).first()
            if exists is not None:
                raise PolicyError(f"operator {operator.operator_id} or its key is already registered")
            conn.execute(t.operators.insert().values(
                operator_id=operator.operator_id, roles=roles, ed25519_public_key=operator.ed25519_public_key.hex(),
                added_at_s=epoch_s(now), added_by=by))
            self._event(conn, by, "operator.added", {"operator_id": operator.operator_id, "roles": roles,
                                                     "ed25519_public_key": operator.ed25519_public_key.hex()}, now)

    def add_credential(self, operator_id: str, scheme: str, public_key: bytes, *, by: str, now: datetime) -> None:
        """Register a further credential (e.g. a WebAuthn key) for an operator, for its ApprovalVerifier."""
        if scheme == ED25519_SCHEME or not _SCHEME.fullmatch(scheme):
            raise PolicyError(f"scheme {scheme!r} cannot be added as a credential")
        self.operators().get(operator_id)
        with self._engine.begin() as conn:
            conn.execute(t.credentials.delete().where(sa.and_(t.credentials.c.operator_id == operator_id,
                                                              t.credentials.c.scheme == scheme)))
            conn.execute(t.credentials.insert().values(operator_id=operator_id, scheme=scheme,
                                                       public_key=public_key.hex(), added_at_s=epoch_s(now),
                                                       added_by=by))
            self._event(conn, by, "operator.credential_added", {"operator_id": operator_id, "scheme": scheme}, now)

    def operators(self) -> OperatorRegistry:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(t.operators)).all()
            extra = conn.execute(sa.select(t.credentials).order_by(t.credentials.c.scheme)).all()
        others: dict[str, list[tuple[str, bytes]]] = {}
        for row in extra:
            others.setdefault(row.operator_id, []).append((row.scheme, bytes.fromhex(row.public_key)))
        return OperatorRegistry(
            Operator(row.operator_id, frozenset(Role(r) for r in row.roles.split(",")),
                     bytes.fromhex(row.ed25519_public_key), tuple(others.get(row.operator_id, ())))
            for row in rows)

    # -- policy versions ------------------------------------------------------------------
    def _compile(self, policies: str, schema: str) -> CompiledPolicy:
        compiled = compile_policy(policies, schema)
        self._compiled[compiled.hash] = compiled
        return compiled

    def bootstrap_default(self, *, now: datetime) -> int:
        """Install and activate the shipped default policy as version 1 when no policy exists yet."""
        compiled = self._compile(default_policy_text(), default_schema_text())
        with self._engine.begin() as conn:
            if conn.execute(sa.select(t.policy_versions.c.version).limit(1)).first() is not None:
                return self.active_version()[0]
            conn.execute(t.policy_versions.insert().values(
                version=1, policy_hash=compiled.hash, policies=compiled.text, schema=compiled.schema_text,
                proposed_by=SYSTEM_ACTOR, proposed_at_s=epoch_s(now), status="active", activated_at_s=epoch_s(now)))
            self._event(conn, SYSTEM_ACTOR, "policy.activated",
                        {"version": 1, "policy_hash": compiled.hash, "genesis": True}, now)
        return 1

    def active_version(self) -> tuple[int, CompiledPolicy]:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(t.policy_versions).where(t.policy_versions.c.status == "active")).first()
        if row is None:
            raise NotFound("no active policy set; run bootstrap first")
        compiled = self._compiled.get(row.policy_hash) or self._compile(row.policies, row.schema)
        if compiled.hash != row.policy_hash:
            raise PolicyError("stored policy text does not match its hash")
        return int(row.version), compiled

    def active_policy(self) -> CompiledPolicy:
        return self.active_version()[1]

    def propose(self, policies: str, schema: str | None, *, proposed_by: str, now: datetime) -> PolicyProposal:
        """Store a new version as proposed. A malformed set is refused (with its location) and changes nothing."""
        schema_text = default_schema_text() if schema is None else schema
        registry = self.operators()
        if proposed_by not in registry or not registry.get(proposed_by).has(Role.POLICY_ADMIN):
            raise PolicyRefused(f"{proposed_by} is not a policy admin", rule="policy.proposer")
        try:
            compiled = self._compile(policies, schema_text)
        except MalformedPolicy as exc:
            with self._engine.begin() as conn:
                self._event(conn, proposed_by, "policy.rejected",
                            {"error": str(exc), "line": exc.line, "column": exc.column}, now)
            raise
        with self._engine.begin() as conn:
            last = conn.execute(sa.select(sa.func.max(t.policy_versions.c.version))).scalar()
            version = int(last or 0) + 1
            conn.execute(t.policy_versions.insert().values(
                version=version, policy_hash=compiled.hash, policies=policies, schema=schema_text,
                proposed_by=proposed_by, proposed_at_s=epoch_s(now), status="proposed", activated_at_s=None))
            self._event(conn, proposed_by, "policy.proposed", {"version": version, "policy_hash": compiled.hash}, now)
        return PolicyProposal(version, compiled.hash, proposed_by)

    def proposal(self, version: int) -> PolicyProposal:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(t.policy_versions).where(t.policy_versions.c.version == version)).first()
        if row is None:
            raise NotFound(f"no policy version {version}")
        return PolicyProposal(int(row.version), row.policy_hash, row.proposed_by)

    def add_signature(self, version: int, signature: AdminSignature, *, now: datetime) -> None:
        self.proposal(version)
        with self._engine.begin() as conn:
            conn.execute(t.policy_signatures.delete().where(sa.and_(
                t.policy_signatures.c.version == version, t.policy_signatures.c.operator_id == signature.operator_id)))
            conn.execute(t.policy_signatures.insert().values(
                version=version, operator_id=signature.operator_id, signature=signature.signature.hex(),
                signed_at_s=epoch_s(now)))
            self._event(conn, signature.operator_id, "policy.signed", {"version": version}, now)

    def signatures(self, version: int) -> tuple[AdminSignature, ...]:
        """The admin signatures of a version (signers check the quorum themselves with these)."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(t.policy_signatures).where(t.policy_signatures.c.version == version)
                                .order_by(t.policy_signatures.c.operator_id)).all()
        return tuple(AdminSignature(r.operator_id, bytes.fromhex(r.signature)) for r in rows)

    def policy_text(self, version: int) -> tuple[str, str]:
        """(policies, schema) of a version, for signers to compile and adopt."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(t.policy_versions).where(t.policy_versions.c.version == version)).first()
        if row is None:
            raise NotFound(f"no policy version {version}")
        return str(row.policies), str(row.schema)

    def activate(self, version: int, *, now: datetime, by: str = SYSTEM_ACTOR) -> CompiledPolicy:
        """Make `version` active if k other policy admins signed it; otherwise the old one stays."""
        proposal = self.proposal(version)
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(t.policy_signatures).where(t.policy_signatures.c.version == version)).all()
            row = conn.execute(sa.select(t.policy_versions).where(t.policy_versions.c.version == version)).one()
        if row.status != "proposed":
            raise PolicyRefused(f"version {version} is {row.status}", rule="policy.state")
        signatures = [AdminSignature(r.operator_id, bytes.fromhex(r.signature)) for r in rows]
        try:
            counted = check_quorum(proposal, signatures, self.operators(), quorum=self._admin_quorum)
        except PolicyRefused as refusal:
            self._refused(by, refusal, {"version": version}, now)
            raise
        compiled = self._compile(row.policies, row.schema)
        if compiled.hash != proposal.policy_hash:
            raise PolicyError("stored policy text does not match its hash")
        with self._engine.begin() as conn:
            conn.execute(t.policy_versions.update().where(t.policy_versions.c.status == "active")
                         .values(status="superseded"))
            conn.execute(t.policy_versions.update().where(t.policy_versions.c.version == version)
                         .values(status="active", activated_at_s=epoch_s(now)))
            self._event(conn, by, "policy.activated",
                        {"version": version, "policy_hash": compiled.hash, "signed_by": list(counted)}, now)
        return compiled

    # -- whitelist and freezes -------------------------------------------------------------
    def add_whitelist(self, account: str, asset: str, destination: str, *, by: str, now: datetime,
                      time_lock_s: int = 24 * 3600) -> WhitelistEntry:
        """Whitelist a destination; it unlocks after the policy's time lock. Hooks run after the commit."""
        at = epoch_s(now)
        entry = WhitelistEntry(account, asset, destination, at, by, at + time_lock_s)
        with self._engine.begin() as conn:
            key = sa.and_(t.whitelist.c.account == account, t.whitelist.c.asset == asset,
                          t.whitelist.c.destination == destination)
            if conn.execute(sa.select(t.whitelist.c.account).where(key)).first() is not None:
                raise PolicyError("destination already whitelisted")
            conn.execute(t.whitelist.insert().values(account=account, asset=asset, destination=destination,
                                                     added_at_s=at, added_by=by))
            self._event(conn, by, "policy.whitelist_added",
                        {"account": account, "asset": asset, "destination": destination, "unlocks_at_s": at + time_lock_s},
                        now)
        for hook in self.whitelist_hooks:
            hook(entry)
        return entry

    def whitelisted_at(self, account: str, asset: str, destination: str) -> int | None:
        with self._engine.connect() as conn:
            value = conn.execute(sa.select(t.whitelist.c.added_at_s).where(sa.and_(
                t.whitelist.c.account == account, t.whitelist.c.asset == asset,
                t.whitelist.c.destination == destination))).scalar()
        return None if value is None else int(value)

    def freeze(self, account: str, *, by: str, now: datetime) -> None:
        with self._engine.begin() as conn:
            if conn.execute(sa.select(t.frozen_accounts.c.account).where(
                    t.frozen_accounts.c.account == account)).first() is None:
                conn.execute(t.frozen_accounts.insert().values(account=account, frozen_at_s=epoch_s(now), frozen_by=by))
            self._event(conn, by, "policy.account_frozen", {"account": account}, now)

    def unfreeze(self, account: str, *, by: str, now: datetime) -> None:
        with self._engine.begin() as conn:
            conn.execute(t.frozen_accounts.delete().where(t.frozen_accounts.c.account == account))
            self._event(conn, by, "policy.account_unfrozen", {"account": account}, now)

    def is_frozen(self, account: str) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(sa.select(t.frozen_accounts.c.account).where(
                t.frozen_accounts.c.account == account)).first() is not None

    # -- requests, approvals, decisions ------------------------------------------------------
    def submit(self, request: WithdrawalRequest, *, now: datetime) -> Decision:
        """Store a request and decide it (usually: waiting for approvals, or refused)."""
        try:
            check_initiator(request, self.operators())
        except PolicyRefused as refusal:
            self._refused(request.initiator, refusal, {"request_digest": request.digest_hex}, now)
            raise
        with self._engine.begin() as conn:
            exists = conn.execute(sa.select(t.requests.c.request_digest).where(
                t.requests.c.request_digest == request.digest_hex)).first()
            if exists is None:
                conn.execute(t.requests.insert().values(
                    request_digest=request.digest_hex, document=request.encode().decode(), kind=request.kind.value,
                    account=request.account, asset=request.asset, amount_minor=str(request.amount_minor),
                    created_at_s=epoch_s(now)))
                self._event(conn, request.initiator, "policy.request_submitted",
                            {"request_digest": request.digest_hex, "kind": request.kind.value,
                             "asset": request.asset, "amount_minor": str(request.amount_minor),
                             "account": request.account, "destination": request.destination}, now)
        return self.decide(request.digest_hex, now=now)

    def request(self, request_digest: str) -> WithdrawalRequest:
        with self._engine.connect() as conn:
            document = conn.execute(sa.select(t.requests.c.document).where(
                t.requests.c.request_digest == request_digest)).scalar()
        if document is None:
            raise NotFound(f"no request {request_digest}")
        request = parse_request(str(document).encode())
        if request.digest_hex != request_digest:
            raise PolicyError("stored request does not match its digest")
        return request

    def approvals(self, request_digest: str) -> tuple[Approval, ...]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(t.approvals.c.document).where(
                t.approvals.c.request_digest == request_digest).order_by(t.approvals.c.operator_id)).all()
        return tuple(parse_approval(str(row.document).encode()) for row in rows)

    def approve(self, approval: Approval, *, now: datetime) -> Decision:
        """Verify and store one approval, then decide again."""
        digest_hex = approval.request_digest.hex()
        try:
            request = self.request(digest_hex)
        except NotFound:
            refusal = ApprovalRefused("approval names no known request", rule="approval.request_mismatch")
            self._refused(approval.operator_id, refusal, {"request_digest": digest_hex}, now)
            raise refusal from None
        try:
            verify_approvals(request, [approval], self.operators(), now_s=epoch_s(now), verifiers=self._verifiers)
        except PolicyRefused as refusal:
            self._refused(approval.operator_id, refusal, {"request_digest": digest_hex}, now)
            raise
        with self._engine.begin() as conn:
            conn.execute(t.approvals.delete().where(sa.and_(t.approvals.c.request_digest == digest_hex,
                                                            t.approvals.c.operator_id == approval.operator_id)))
            conn.execute(t.approvals.insert().values(request_digest=digest_hex, operator_id=approval.operator_id,
                                                     document=approval.encode().decode(), received_at_s=epoch_s(now)))
            self._event(conn, approval.operator_id, "policy.approval",
                        {"request_digest": digest_hex, "role": approval.role.value,
                         "expires_at_s": approval.expires_at_s}, now)
        return self.decide(digest_hex, now=now)

    def _valid_approvals(self, request: WithdrawalRequest, now_s: int) -> tuple[Approval, ...]:
        registry = self.operators()
        valid = []
        for approval in self.approvals(request.digest_hex):
            try:
                verify_approvals(request, [approval], registry, now_s=now_s, verifiers=self._verifiers)
            except PolicyRefused:
                continue  # expired since it was stored, or its operator lost the role
            valid.append(approval)
        return tuple(valid)

    def history(self, *, now_s: int) -> list[PastTransfer]:
        """Attested withdrawals in the velocity window: the coordinator's view of velocity."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(t.attestations).where(
                t.attestations.c.attested_at_s > now_s - VELOCITY_WINDOW_S)).all()
        return [PastTransfer(int(r.attested_at_s), r.account, r.asset, int(r.amount_minor), Route(r.route),
                             RequestKind(r.kind)) for r in rows]

    def facts(self, request: WithdrawalRequest) -> AttestedFacts:
        return AttestedFacts(self.is_frozen(request.account),
                             self.whitelisted_at(request.account, request.asset, request.destination),
                             max(0, int(self._hot_balance(request.asset))))

    def _evaluate(self, request: WithdrawalRequest, now: datetime) -> tuple[Decision, tuple[Approval, ...], AttestedFacts]:
        now_s = epoch_s(now)
        approvals = self._valid_approvals(request, now_s)
        verified = verify_approvals(request, approvals, self.operators(), now_s=now_s, verifiers=self._verifiers)
        facts = self.facts(request)
        context = DecisionContext(halted=bool(self._halted()), account_frozen=facts.account_frozen,
                                  whitelisted_at_s=facts.whitelisted_at_s, hot_balance_minor=facts.hot_balance_minor,
                                  history=self.history(now_s=now_s), approvals=verified)
        return self.active_policy().decide(request, context, now), approvals, facts

    def decide(self, request_digest: str, *, now: datetime) -> Decision:
        """Decide a stored request now; the decision is stored and audited."""
        request = self.request(request_digest)
        decision, _, _ = self._evaluate(request, now)
        self._record_decision(request, decision, now)
        return decision

    def _record_decision(self, request: WithdrawalRequest, decision: Decision, now: datetime) -> None:
        with self._engine.begin() as conn:
            conn.execute(t.decisions.insert().values(
                request_digest=request.digest_hex, allowed=decision.allowed, refused=decision.refused,
                route=decision.route.value, reasons=json.dumps(list(decision.reasons)),
                policy_hash=decision.policy_hash, decided_at_s=epoch_s(now)))
            self._event(conn, SYSTEM_ACTOR, "policy.decision",
                        {"request_digest": request.digest_hex, "allowed": decision.allowed,
                         "refused": decision.refused, "route": decision.route.value,
                         "reasons": list(decision.reasons), "policy_hash": decision.policy_hash,
                         "required_approvers": decision.required_approvals.approvers,
                         "required_security_officers": decision.required_approvals.security_officers}, now)

    def attest(self, request_digest: str, *, now: datetime) -> SignedDecision:
        """Decide, and if allowed have the HSM sign the decision (once per request).

        Serialised (a process lock, and an advisory lock on PostgreSQL for several coordinators) so
        two withdrawals cannot both be judged against the velocity history before either counts.
        """
        hsm = self._hsm
        if hsm is None:
            raise PolicyError("this service has no HSM")
        with self._attestation_serialised():
            return self._attest(hsm, request_digest, now)

    @contextmanager
    def _attestation_serialised(self) -> Iterator[None]:
        with self._attest_lock, self._engine.connect() as lock_conn:
            postgres = is_postgres(self._engine)
            if postgres:
                lock_conn.execute(sa.text("SELECT pg_advisory_lock(7310005)"))
                lock_conn.commit()
            try:
                yield
            finally:
                if postgres:
                    lock_conn.execute(sa.text("SELECT pg_advisory_unlock(7310005)"))
                    lock_conn.commit()

    def close(self, request_digest: str, reason: str, *, by: str, now: datetime) -> None:
        """Close a request before it is attested (a cancellation): it can never be attested after.

        Serialised with attestation, so a request is either attested or closed, never both.
        """
        if reason not in CLOSE_REASONS:
            raise PolicyError(f"close reason must be one of {sorted(CLOSE_REASONS)}")
        self.request(request_digest)
        with self._attestation_serialised():
            if self._attested(request_digest):
                raise PolicyRefused("this request was already attested", rule="request.already_attested")
            with self._engine.begin() as conn:
                if conn.execute(sa.select(t.closed_requests.c.request_digest).where(
                        t.closed_requests.c.request_digest == request_digest)).first() is not None:
                    return
                conn.execute(t.closed_requests.insert().values(request_digest=request_digest, reason=reason,
                                                               closed_by=by, closed_at_s=epoch_s(now)))
                self._event(conn, by, "policy.request_closed", {"request_digest": request_digest, "reason": reason},
                            now)

    def closed(self, request_digest: str) -> str | None:
        """Why the request was closed, or None while it is open."""
        with self._engine.connect() as conn:
            reason = conn.execute(sa.select(t.closed_requests.c.reason).where(
                t.closed_requests.c.request_digest == request_digest)).scalar()
        return None if reason is None else str(reason)

    def dispatchable(self, *, now: datetime, window_s: int, limit: int) -> list[str]:
        """Requests submitted in the last `window_s` whose latest decision allows them and that are
        neither attested nor closed: what the pipeline hands to its route next, oldest first."""
        latest = (sa.select(t.decisions.c.allowed).where(t.decisions.c.request_digest == t.requests.c.request_digest)
                  .order_by(t.decisions.c.id.desc()).limit(1).scalar_subquery())
        query = (sa.select(t.requests.c.request_digest)
                 .where(t.requests.c.created_at_s > epoch_s(now) - window_s, latest == sa.true(),
                        ~sa.exists().where(t.attestations.c.request_digest == t.requests.c.request_digest),
                        ~sa.exists().where(t.closed_requests.c.request_digest == t.requests.c.request_digest))
                 .order_by(t.requests.c.created_at_s, t.requests.c.request_digest).limit(limit))
        with self._engine.connect() as conn:
            return [str(digest) for digest in conn.execute(query).scalars()]

    def is_attested(self, request_digest: str) -> bool:
        return self._attested(request_digest)

    def latest_decision(self, request_digest: str) -> tuple[bool, bool, tuple[str, ...]] | None:
        """(allowed, refused, reasons) of the last decision recorded for the request, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(t.decisions.c.allowed, t.decisions.c.refused, t.decisions.c.reasons)
                               .where(t.decisions.c.request_digest == request_digest)
                               .order_by(t.decisions.c.id.desc()).limit(1)).one_or_none()
        if row is None:
            return None
        return bool(row.allowed), bool(row.refused), tuple(json.loads(row.reasons))

    def _attest(self, hsm: Hsm, request_digest: str, now: datetime) -> SignedDecision:
        request = self.request(request_digest)
        if self._attested(request_digest):
            raise PolicyRefused("this request was already attested", rule="request.already_attested")
        if self.closed(request_digest) is not None:
            refusal = PolicyRefused("this request was closed", rule="request.closed")
            self._refused(SYSTEM_ACTOR, refusal, {"request_digest": request_digest}, now)
            raise refusal
        decision, approvals, facts = self._evaluate(request, now)
        self._record_decision(request, decision, now)
        if not decision.allowed:
            rules = decision.refusing_rules or decision.pending_rules or ("policy.not_allowed",)
            refusal = PolicyRefused(f"not allowed: {', '.join(decision.reasons)}", rule=rules[0])
            self._refused(SYSTEM_ACTOR, refusal, {"request_digest": request_digest}, now)
            raise refusal
        ensure_attestation_key(hsm, self._attestation_label)
        signed = attest_decision(hsm, request, decision, approvals, facts, now_s=epoch_s(now),
                                 ttl_s=self._attestation_ttl_s, label=self._attestation_label)
        with self._engine.begin() as conn:
            if conn.execute(sa.select(t.attestations.c.request_digest).where(
                    t.attestations.c.request_digest == request_digest)).first() is not None:
                raise PolicyRefused("this request was already attested", rule="request.already_attested")
            conn.execute(t.attestations.insert().values(
                request_digest=request_digest, kind=request.kind.value, account=request.account,
                asset=request.asset, amount_minor=str(request.amount_minor), route=decision.route.value,
                attested_at_s=epoch_s(now), document=signed.encode().decode()))
            self._event(conn, SYSTEM_ACTOR, "policy.attested",
                        {"request_digest": request_digest, "route": decision.route.value,
                         "policy_hash": decision.policy_hash,
                         "approvers": [a.operator_id for a in approvals]}, now)
        return signed

    def _attested(self, request_digest: str) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(sa.select(t.attestations.c.request_digest).where(
                t.attestations.c.request_digest == request_digest)).first() is not None

    def attestation(self, request_digest: str) -> SignedDecision:
        """The stored attestation of a request (what signers are given)."""
        with self._engine.connect() as conn:
            document = conn.execute(sa.select(t.attestations.c.document).where(
                t.attestations.c.request_digest == request_digest)).scalar()
        if document is None:
            raise NotFound(f"request {request_digest} has no attestation")
        return parse_signed_decision(str(document).encode())

    def attestation_public_key(self) -> bytes:
        if self._hsm is None:
            raise PolicyError("this service has no HSM")
        return ensure_attestation_key(self._hsm, self._attestation_label)

    # -- audit checkpoints -----------------------------------------------------------------
    def checkpoint(self, *, now: datetime, label: str = CHECKPOINT_KEY_LABEL) -> AuditCheckpoint:
        """Sign the audit head with the HSM and store the checkpoint (call periodically)."""
        if self._hsm is None:
            raise PolicyError("this service has no HSM")
        checkpoint = sign_checkpoint(self._audit, self._hsm, now_s=epoch_s(now), label=label)
        public_key = self._hsm.public_key(label)
        with self._engine.begin() as conn:
            if conn.execute(sa.select(t.checkpoints.c.seq).where(t.checkpoints.c.seq == checkpoint.seq)).first() is None:
                conn.execute(t.checkpoints.insert().values(
                    seq=checkpoint.seq, head_digest=checkpoint.head_digest, at_s=checkpoint.at_s,
                    signature=checkpoint.signature.hex(), public_key=public_key.hex()))
        with self._engine.begin() as conn:
            self._event(conn, SYSTEM_ACTOR, "policy.audit_checkpoint",
                        {"seq": checkpoint.seq, "head_digest": checkpoint.head_digest}, now)
        return checkpoint

    def checkpoint_if_due(self, *, now: datetime, every_events: int = 1000,
                          label: str = CHECKPOINT_KEY_LABEL) -> AuditCheckpoint | None:
        """Sign a checkpoint when `every_events` events were appended since the last one (scheduler job)."""
        seq, _ = self._audit.head()
        with self._engine.connect() as conn:
            last = conn.execute(sa.select(sa.func.max(t.checkpoints.c.seq))).scalar()
        if seq - int(last or 0) < every_events:
            return None
        return self.checkpoint(now=now, label=label)

    def checkpoints(self) -> Sequence[AuditCheckpoint]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(t.checkpoints).order_by(t.checkpoints.c.seq)).all()
        return [AuditCheckpoint(int(r.seq), r.head_digest, int(r.at_s), bytes.fromhex(r.signature)) for r in rows]
