"""The withdrawal desk: the one path a withdrawal takes through the coordinator.

request → ledger hold (client funds move from `available` to `held`) → policy decision →
approvals by operators → HSM attestation → the route's pipeline (cold batch or hot MPC wallet).
A refusal at any step releases the hold; money never moves on an error path.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from coffer.errors import CofferError
from coffer.ledger import AccountKey, Kind, Transfer, credit, debit
from coffer.log import get_logger
from coffer.policy.approval import Approval
from coffer.policy.attestation import verify_attestation
from coffer.policy.engine import Decision, Route
from coffer.policy.errors import PolicyRefused
from coffer.policy.request import RequestKind, WithdrawalRequest, new_nonce
from coffer.policy.roles import client_principal

__all__ = ["WithdrawalDesk", "Submitted", "WithdrawalFinal", "REQUEST_TTL_S"]

REQUEST_TTL_S = 24 * 3600
log = get_logger("coffer.withdrawals")


class WithdrawalFinal(CofferError):
    """The withdrawal can no longer be cancelled: it is already final, or a signer may have it."""


@dataclass(frozen=True, slots=True)
class Submitted:
    request: WithdrawalRequest
    decision: Decision


class WithdrawalDesk:
    def __init__(self, coordinator: Any, *, hot_dispatch: Callable[[WithdrawalRequest, Any, dt.datetime], Any] | None
                 = None) -> None:
        self._c = coordinator
        self.hot_dispatch = hot_dispatch

    def _hold_key(self, request: WithdrawalRequest) -> str:
        return f"hold:{request.digest_hex}"

    def request(self, client_id: str, asset: str, amount_minor: int, destination: str, *, now: dt.datetime,
                source_wallet: str = "auto", fee_policy: str = "normal") -> Submitted:
        """A client asks to withdraw: hold the funds, then let the policy decide."""
        return self.submit(self.new_request(client_id, asset, amount_minor, destination, now=now,
                                            source_wallet=source_wallet, fee_policy=fee_policy), now=now)

    def new_request(self, client_id: str, asset: str, amount_minor: int, destination: str, *, now: dt.datetime,
                    source_wallet: str = "auto", fee_policy: str = "normal") -> WithdrawalRequest:
        """The request document, fixed before anything is held, so a retry can submit the same one."""
        return WithdrawalRequest(
            kind=RequestKind.CLIENT_WITHDRAWAL, asset=asset, amount_minor=amount_minor, destination=destination,
            source_wallet=source_wallet, account=client_id, fee_policy=fee_policy, nonce=new_nonce(),
            expires_at_s=int(now.timestamp()) + REQUEST_TTL_S, initiator=client_principal(client_id))

    def submit(self, request: WithdrawalRequest, *, now: dt.datetime) -> Submitted:
        """Hold the funds, then let the policy decide; repeating it with the same request does each once."""
        client_id, asset, amount_minor, destination = (request.account, request.asset, request.amount_minor,
                                                       request.destination)
        self._c.ledger.apply(Transfer(
            idempotency_key=self._hold_key(request), kind=Kind.WITHDRAWAL_HOLD,
            postings=(debit(AccountKey.available(client_id, asset), amount_minor),
                      credit(AccountKey.held(client_id, asset), amount_minor)),
            at=now, metadata={"request_digest": request.digest_hex, "destination": destination}),
            actor=request.initiator)
        try:
            decision = self._c.policy.submit(request, now=now)
        except CofferError:
            self._release(request, "submission refused", now)
            raise
        if decision.refused:
            self._release(request, ",".join(decision.refusing_rules), now)
            raise PolicyRefused(f"refused by {', '.join(decision.refusing_rules)}", rule=decision.refusing_rules[0])
        log.info("withdrawal.requested", request=request.digest_hex, client=client_id, route=decision.route.value,
                 allowed=decision.allowed)
        return Submitted(request, decision)

    def _release(self, request: WithdrawalRequest, reason: str, now: dt.datetime) -> None:
        self._c.ledger.apply(Transfer(
            idempotency_key=f"release:{request.digest_hex}", kind=Kind.WITHDRAWAL_RELEASE,
            postings=(debit(AccountKey.held(request.account, request.asset), request.amount_minor),
                      credit(AccountKey.available(request.account, request.asset), request.amount_minor)),
            at=now, metadata={"request_digest": request.digest_hex, "reason": reason[:200]}), actor="withdrawals")

    def cancel(self, request_digest: str, *, by: str, now: dt.datetime) -> None:
        """Cancel a withdrawal that no signer can have yet, and release the client's hold.

        Before attestation the request is closed (serialised with attestation, so it is one or the
        other); after it, only a cold withdrawal still waiting in the queue can be taken out.
        """
        request = self._c.policy.request(request_digest)
        if self._c.ledger.transfer(f"release:{request_digest}") is not None:
            raise WithdrawalFinal(f"withdrawal {request_digest} was already refused or cancelled")
        try:
            self._c.policy.close(request_digest, "cancelled_by_client", by=by, now=now)
        except PolicyRefused as refusal:
            if refusal.rule != "request.already_attested" or not self._taken_out_of_cold_queue(
                    request_digest, by=by, now=now):
                raise WithdrawalFinal(f"withdrawal {request_digest} is already being signed or paid") from None
        self._release(request, "cancelled", now)
        log.info("withdrawal.cancelled", request=request_digest, by=by)

    def _taken_out_of_cold_queue(self, request_digest: str, *, by: str, now: dt.datetime) -> bool:
        state = self._c.cold.withdrawal_state(request_digest)
        if state is not None and state[0] == "cancelled" and state[1] is None:
            return True  # cancelled before a crash kept the release from happening: finish it
        return bool(self._c.cold.cancel_queued(request_digest, by=by, now=now))

    def approve(self, approval: Approval, *, now: dt.datetime) -> Decision:
        decision: Decision = self._c.policy.approve(approval, now=now)
        return decision

    def dispatch(self, request_digest: str, *, now: dt.datetime) -> Route:
        """Attest an allowed request and hand it to its route's pipeline."""
        from coffer.cold.guards import payment_for

        request = self._c.policy.request(request_digest)
        if self._c.policy.is_attested(request_digest):
            signed = self._c.policy.attestation(request_digest)  # a run cut short after attesting: go on
        else:
            signed = self._c.policy.attest(request_digest, now=now)
        statement_route = verify_attestation(signed, self._c.policy.attestation_public_key()).route
        document = signed.to_json()
        if statement_route is Route.COLD:
            client = request.account if request.kind is RequestKind.CLIENT_WITHDRAWAL else None
            self._c.cold.enqueue(request.digest_hex, client, request.destination, request.amount_minor,
                                 payment_for(request, document), now=now)
        else:
            if self.hot_dispatch is None:
                raise CofferError("no hot wallet is running for hot-routed withdrawals")
            self.hot_dispatch(request, signed, now)
        return Route(statement_route)
