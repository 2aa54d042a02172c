"""The custody desk the exchange API serves: accounts, deposit addresses, deposits, balances,
withdrawals and their states, and the event feed, over the coordinator's parts.

Every state it reports is read from the part that owns it (ledger, policy, cold custody, the
audit chain), never kept twice. It moves no money itself: holds, releases and payments happen in
the withdrawal desk and the custody pipelines.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from coffer.errors import CofferError
from coffer.ledger import AccountKey
from coffer.policy.request import WithdrawalRequest
from coffer.withdrawals import WithdrawalDesk

__all__ = ["CustodyDesk", "WithdrawalView", "AssetUnavailable", "WITHDRAWAL_STATES", "FEED_EVENTS",
           "FEED_PAGE_MAX", "FeedInvalid"]

FEED_PAGE_MAX = 500
FEED_SCAN_PAGE = 2_000
FEED_SCAN_PAGES_MAX = 10
WITHDRAWAL_STATES = ("held", "awaiting_approval", "approved", "batched", "signing", "broadcast", "confirmed",
                     "refused", "cancelled")
# What the exchange hears about: requests and their decisions, payments, deposits, halts.
FEED_EVENTS = ("policy.request_submitted", "policy.decision", "policy.attested", "policy.request_closed",
               "cold.withdrawal_queued", "cold.withdrawal_cancelled", "cold.batch_sealed", "cold.batch_broadcast",
               "cold.batch_confirmed", "cold.batch_abandoned", "cold.deposit_credited", "cold.deposit_reorged",
               "cold.deposit_reorged_after_credit", "cold.deposit_remined", "recon.halt", "recon.resume")
_BATCH_STATES = {"sealed": "batched", "signed": "signing", "broadcast": "broadcast", "confirmed": "confirmed"}


class FeedInvalid(CofferError):
    """A feed cursor or page size out of range."""


class AssetUnavailable(CofferError):
    """The asset has no custody configured on this coordinator for what was asked."""


@dataclass(frozen=True, slots=True)
class WithdrawalView:
    withdrawal_id: str
    client_id: str
    asset: str
    amount_minor: int
    destination: str
    state: str
    batch_id: str | None
    reasons: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"id": self.withdrawal_id, "client_id": self.client_id, "asset": self.asset,
                "amount_minor": self.amount_minor, "destination": self.destination, "state": self.state,
                "batch_id": self.batch_id, "reasons": list(self.reasons)}


class CustodyDesk:
    """One coordinator's desk; `coordinator` is `coffer.coordinator.Coordinator`."""

    def __init__(self, coordinator: Any, withdrawals: WithdrawalDesk, *, assets: tuple[str, ...]) -> None:
        self._c = coordinator
        self._withdrawals = withdrawals
        self.assets = assets

    def _check_asset(self, asset: str) -> None:
        if asset not in self.assets:
            raise AssetUnavailable(f"asset {asset!r} is not kept here (assets: {', '.join(self.assets)})")

    def open_account(self, client_id: str, *, now: dt.datetime) -> dict[str, Any]:
        account = self._c.ledger.open_client(client_id, self.assets, at=now)
        return {"client_id": client_id, "account_number": account.account_number, "assets": list(self.assets)}

    def balances(self, client_id: str) -> dict[str, dict[str, int]]:
        self._c.ledger.client(client_id)
        result: dict[str, dict[str, int]] = {}
        for asset in self.assets:
            result[asset] = {"available": self._c.ledger.balance(AccountKey.available(client_id, asset)),
                             "held": self._c.ledger.balance(AccountKey.held(client_id, asset))}
        return result

    def deposit_address(self, client_id: str, asset: str, *, now: dt.datetime) -> str:
        self._check_asset(asset)
        self._c.ledger.client(client_id)
        if asset != "BTC":
            raise AssetUnavailable(f"deposit addresses for {asset} are not served by this coordinator yet")
        return str(self._c.cold.deposit_address(client_id, now=now))

    def deposits(self, client_id: str) -> list[dict[str, Any]]:
        self._c.ledger.client(client_id)
        return [{"asset": "BTC", "txid": d["txid"], "vout": d["vout"], "amount_minor": int(d["amount_sats"]),
                 "status": d["status"], "height": d.get("height")}
                for d in self._c.cold.deposits() if d.get("client_id") == client_id]

    def new_withdrawal(self, client_id: str, asset: str, amount_minor: int, destination: str, *,
                       now: dt.datetime) -> WithdrawalRequest:
        """The request document, made before anything is held (a retry submits this same document)."""
        self._check_asset(asset)
        self._c.ledger.client(client_id)
        return self._withdrawals.new_request(client_id, asset, amount_minor, destination, now=now)

    def submit_withdrawal(self, request: WithdrawalRequest, *, now: dt.datetime) -> WithdrawalView:
        """Hold the funds and submit the request to the policy (each once); a refusal releases the hold."""
        self._check_asset(request.asset)
        submitted = self._withdrawals.submit(request, now=now)
        return self.withdrawal(submitted.request.digest_hex)

    def cancel(self, withdrawal_id: str, *, by: str, now: dt.datetime) -> WithdrawalView:
        self._withdrawals.cancel(withdrawal_id, by=by, now=now)
        return self.withdrawal(withdrawal_id)

    def withdrawal(self, withdrawal_id: str) -> WithdrawalView:
        """Where a withdrawal stands, read from the parts that own each step."""
        request = self._c.policy.request(withdrawal_id)
        state, batch_id, reasons = self._state(withdrawal_id)
        return WithdrawalView(withdrawal_id, request.account, request.asset, request.amount_minor,
                              request.destination, state, batch_id, reasons)

    def _state(self, digest: str) -> tuple[str, str | None, tuple[str, ...]]:
        if self._c.policy.closed(digest) is not None:
            return "cancelled", None, ()
        cold = self._c.cold.withdrawal_state(digest) if self._has_cold() else None
        if cold is not None:
            status, batch_id, batch_status = cold
            if status == "cancelled":
                return ("cancelled" if batch_id is None else "refused"), batch_id, ()
            if status == "queued":
                return "approved", None, ()
            return _BATCH_STATES.get(str(batch_status), "batched"), batch_id, ()
        decision = self._c.policy.latest_decision(digest)
        released = self._c.ledger.transfer(f"release:{digest}") is not None
        if decision is None:
            return ("refused" if released else "held"), None, ()
        allowed, refused, reasons = decision
        if refused or released:
            return "refused", None, reasons
        if allowed or self._c.policy.is_attested(digest):
            return "approved", None, reasons
        return "awaiting_approval", None, reasons

    def _has_cold(self) -> bool:
        try:
            self._c.cold.wallet()
        except CofferError:
            return False
        return True

    def events(self, *, after: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """The feed: custody events after sequence `after`, oldest first, and the cursor to go on from."""
        if after < 0 or not 1 <= limit <= FEED_PAGE_MAX:
            raise FeedInvalid(f"after must be ≥ 0 and limit 1..{FEED_PAGE_MAX}")
        found: list[dict[str, Any]] = []
        cursor = after
        for _ in range(FEED_SCAN_PAGES_MAX):
            page = self._c.audit.events(after_seq=cursor, limit=FEED_SCAN_PAGE)
            for event in page:
                cursor = event.seq
                if event.event in FEED_EVENTS:
                    found.append({"seq": event.seq, "at": event.at, "event": event.event,
                                  "payload": dict(event.payload), "digest": event.digest})
                    if len(found) == limit:
                        return found, cursor
            if len(page) < FEED_SCAN_PAGE:
                break
        return found, cursor
