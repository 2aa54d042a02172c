"""The approvals queue: each request with amount, destination, route, the policy's decision and its
reasons, who initiated and who approved; approving is a WebAuthn assertion whose challenge is
`approval_message(approval)` (so it binds the request digest), or an uploaded Ed25519 approval.

The queue is read from the audit log (request submitted, decisions, rejections) and the policy
service; the console never writes the policy's tables.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response
from webauthn import generate_authentication_options, options_to_json
from webauthn.helpers.structs import PublicKeyCredentialDescriptor, UserVerificationRequirement

from coffer.audit import AuditEvent
from coffer.errors import NotFound
from coffer.policy.approval import Approval, approval_message, parse_approval
from coffer.policy.engine import Decision, epoch_s
from coffer.policy.roles import Role
from coffer.policy.webauthn import WEBAUTHN_SCHEME, WebAuthnAssertion
from coffer.web.console.auth import AssertionBody, _unb64, credential_descriptor
from coffer.web.console.common import operator_api, parts, require_role
from coffer.web.console.errors import CeremonyRefused, OperatorRefused
from coffer.web.console.parts import ConsoleParts
from coffer.web.deps import context, require_csrf
from coffer.web.sessions import Session

__all__ = ["router", "QueueItem", "queue", "queue_item", "decision_json", "recent_events", "events_after", "QUEUE_MAX"]

QUEUE_MAX = 200
EVENT_PAGE = 5000
EVENT_PAGES_MAX = 2000  # a bound on one scan: ten million events
DIGEST = Path(..., pattern=r"^[0-9a-f]{64}$", description="the request digest, hex")
router = APIRouter(prefix="/api/v1/console", tags=["console: approvals"])


@dataclass(frozen=True, slots=True)
class QueueItem:
    request_digest: str
    kind: str
    asset: str
    amount_minor: int
    destination: str
    account: str
    source_wallet: str
    initiator: str
    submitted_at: str
    expires_at_s: int
    status: str  # pending, approved, refused, rejected, expired
    route: str | None
    reasons: tuple[str, ...]
    approvers: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"request_digest": self.request_digest, "kind": self.kind, "asset": self.asset,
                "amount_minor": str(self.amount_minor), "destination": self.destination, "account": self.account,
                "source_wallet": self.source_wallet, "initiator": self.initiator,
                "submitted_at": self.submitted_at, "expires_at_s": self.expires_at_s, "status": self.status,
                "route": self.route, "reasons": list(self.reasons), "approvers": list(self.approvers)}


def events_after(console: ConsoleParts, event: str, after_seq: int) -> Iterator[AuditEvent]:
    """Every `event` after `after_seq`, oldest first, read a page at a time (the log only grows)."""
    for _ in range(EVENT_PAGES_MAX):
        page = console.audit.events(event=event, after_seq=after_seq, limit=EVENT_PAGE)
        yield from page
        if len(page) < EVENT_PAGE:
            return
        after_seq = page[-1].seq


def _latest(console: ConsoleParts, event: str, after_seq: int) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for item in events_after(console, event, after_seq):
        latest[str(item.payload.get("request_digest"))] = dict(item.payload)
    return latest


def recent_events(console: ConsoleParts, event: str, keep: int) -> list[AuditEvent]:
    """The newest `keep` events of a kind, oldest first; later calls read only what was appended since."""
    with console.queue_lock:
        scanned_seq, tail = console.event_tails.get(event, (0, ()))
    fresh = deque(tail, maxlen=keep)
    for item in events_after(console, event, scanned_seq):
        fresh.append(item)
        scanned_seq = item.seq
    with console.queue_lock:
        console.event_tails[event] = (scanned_seq, tuple(fresh))
    return list(fresh)


def queue(console: ConsoleParts, *, now: datetime, limit: int = QUEUE_MAX) -> list[QueueItem]:
    """The newest requests first.

    Every change to a request, approval or decision is an audit event written in the same
    transaction, so the queue read at one audit head stays right until the head moves; only
    expiry depends on the clock, and it is re-applied on every read."""
    head = console.audit.head()
    with console.queue_lock:
        cached = console.queue_cache
    if cached is None or cached[0] != (head, limit):
        items = _read_queue(console, now=now, limit=limit)
        with console.queue_lock:
            console.queue_cache = ((head, limit), items)
    else:
        items = cached[1]
    now_s = epoch_s(now)
    return [replace(item, status="expired") if item.status == "pending" and item.expires_at_s <= now_s else item
            for item in items]


def _read_queue(console: ConsoleParts, *, now: datetime, limit: int) -> list[QueueItem]:
    submitted = recent_events(console, "policy.request_submitted", QUEUE_MAX)[-limit:]
    if not submitted:
        return []
    after = submitted[0].seq - 1
    decisions = _latest(console, "policy.decision", after)
    rejections = _latest(console, "console.request_rejected", after)
    return [_item(console, event.payload["request_digest"], event.at, decisions, rejections, now)
            for event in reversed(submitted)]


def queue_item(console: ConsoleParts, digest: str, *, now: datetime) -> QueueItem:
    events = [e for e in recent_events(console, "policy.request_submitted", QUEUE_MAX)
              if e.payload.get("request_digest") == digest]
    if not events:  # older than the queue window
        events = [e for e in events_after(console, "policy.request_submitted", 0)
                  if e.payload.get("request_digest") == digest][:1]
    if not events:
        raise NotFound(f"no request {digest}")
    after = events[0].seq - 1
    return _item(console, digest, events[0].at, _latest(console, "policy.decision", after),
                 _latest(console, "console.request_rejected", after), now)


def _item(console: ConsoleParts, digest: str, at: str, decisions: dict[str, dict[str, Any]],
          rejections: dict[str, dict[str, Any]], now: datetime) -> QueueItem:
    request = console.policy.request(digest)
    decision = decisions.get(digest)
    approvers = tuple(a.operator_id for a in console.policy.approvals(digest))
    if digest in rejections:
        status = "rejected"
    elif decision is not None and decision.get("allowed"):
        status = "approved"
    elif decision is not None and decision.get("refused"):
        status = "refused"
    elif request.expires_at_s <= epoch_s(now):
        status = "expired"
    else:
        status = "pending"
    return QueueItem(digest, request.kind.value, request.asset, request.amount_minor, request.destination,
                     request.account, request.source_wallet, request.initiator, at, request.expires_at_s, status,
                     None if decision is None else str(decision.get("route")),
                     tuple(decision.get("reasons", ())) if decision else (), approvers)


def decision_json(decision: Decision) -> dict[str, Any]:
    return {"request_digest": decision.request_digest.hex(), "allowed": decision.allowed,
            "refused": decision.refused, "route": decision.route.value, "reasons": list(decision.reasons),
            "pending_rules": list(decision.pending_rules), "policy_hash": decision.policy_hash}


class RejectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(..., min_length=1, max_length=500)


class ApprovalDocumentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approval: str = Field(..., max_length=16384, pattern=r"^(?:[0-9a-f]{2})*$",
                          description="an Ed25519 approval document (coffer.approval.v1) as hex, from the CLI")


def _now(request: Request) -> datetime:
    return context(request).clock().astimezone(UTC)


@router.get("/approvals", summary="The approvals queue, newest first", response_model=None,
            responses={200: {"description": "the queue", "content": {"application/json": {}}}})
def list_approvals(request: Request) -> Response:
    operator_api(request)
    items = queue(parts(request), now=_now(request))
    return JSONResponse({"requests": [item.to_json() for item in items],
                         "pending": sum(1 for item in items if item.status == "pending")})


@router.get("/approvals/{digest}", summary="One request with its decision and approvers")
def show_approval(request: Request, digest: str = DIGEST, session: Session = Depends(operator_api)) -> dict[str, Any]:
    return queue_item(parts(request), digest, now=_now(request)).to_json()


def _approval_role(request: Request, session: Session) -> Role:
    operator = require_role(request, session, Role.APPROVER, Role.SECURITY_OFFICER)
    return Role.APPROVER if operator.has(Role.APPROVER) else Role.SECURITY_OFFICER


@router.post("/approvals/{digest}/challenge",
             summary="Start approving with a security key: the WebAuthn challenge is the approval message")
def approval_challenge(request: Request, digest: str = DIGEST,
                       session: Session = Depends(operator_api)) -> dict[str, Any]:
    require_csrf(request, session, None)
    console = parts(request)
    role = _approval_role(request, session)
    request_document = console.policy.request(digest)
    if queue_item(console, digest, now=_now(request)).status != "pending":
        raise OperatorRefused("this request is no longer waiting for approvals", rule="console.not_pending")
    if request_document.initiator == session.subject:
        raise OperatorRefused("you initiated this request and cannot approve it", rule="sod.self_approval")
    stored = credential_descriptor(console, session.subject)
    expires_at_s = epoch_s(_now(request)) + console.approval_ttl_s
    unsigned = Approval(bytes.fromhex(digest), session.subject, role, expires_at_s, WEBAUTHN_SCHEME, b"")
    challenge = approval_message(unsigned)
    options = generate_authentication_options(
        rp_id=stored.rp_id, challenge=challenge, allow_credentials=[
            PublicKeyCredentialDescriptor(id=stored.credential_id)],
        user_verification=UserVerificationRequirement.REQUIRED)  # consent to move money: PIN or biometric
    ceremony = console.ceremonies.start("approve", session.subject, challenge, digest=digest, role=role.value,
                                        expires_at_s=expires_at_s)
    return {"ceremony": ceremony, "options": json.loads(options_to_json(options)), "role": role.value,
            "expires_at_s": expires_at_s, "approval_message": challenge.hex()}


@router.post("/approvals/{digest}/approve", summary="Finish approving: the security key's assertion is the approval")
def approve(request: Request, body: AssertionBody, digest: str = DIGEST,
            session: Session = Depends(operator_api)) -> dict[str, Any]:
    require_csrf(request, session, None)
    console = parts(request)
    ceremony = console.ceremonies.take(body.ceremony, "approve")
    if ceremony.subject != session.subject or ceremony.data["digest"] != digest:
        raise CeremonyRefused("this ceremony belongs to another operator or request")
    assertion = WebAuthnAssertion(_unb64(body.id), _unb64(body.response.authenticatorData),
                                  _unb64(body.response.clientDataJSON), _unb64(body.response.signature))
    approval = Approval(bytes.fromhex(digest), session.subject, Role(ceremony.data["role"]),
                        int(ceremony.data["expires_at_s"]), WEBAUTHN_SCHEME, assertion.encode())
    decision = console.policy.approve(approval, now=_now(request))
    return {"approval": approval.encode().decode(), "decision": decision_json(decision)}


@router.post("/approvals/{digest}/approval", summary="Submit an Ed25519 approval made with the operator's CLI key")
def submit_approval(request: Request, body: ApprovalDocumentBody, digest: str = DIGEST,
                    session: Session = Depends(operator_api)) -> dict[str, Any]:
    require_csrf(request, session, None)
    approval = parse_approval(bytes.fromhex(body.approval))
    if approval.request_digest.hex() != digest:
        raise CeremonyRefused("the approval is for another request")
    decision = parts(request).policy.approve(approval, now=_now(request))
    return {"decision": decision_json(decision)}


@router.post("/approvals/{digest}/reject", summary="Reject a request (recorded in the audit log; it leaves the queue)")
def reject(request: Request, body: RejectBody, digest: str = DIGEST,
           session: Session = Depends(operator_api)) -> dict[str, Any]:
    require_csrf(request, session, None)
    require_role(request, session, Role.APPROVER, Role.SECURITY_OFFICER)
    console = parts(request)
    console.policy.reject(digest, by=session.subject, reason=body.reason, now=_now(request))  # final
    console.audit.append(session.subject, "console.request_rejected",
                         {"request_digest": digest, "reason": body.reason}, at=_now(request))
    return {"request_digest": digest, "status": "rejected"}
