"""The exchange API (`/api/v1/exchange/...`): how the exchange's own systems open accounts, get
deposit addresses, follow deposits, request, follow and cancel withdrawals, read balances and read
the custody event feed.

Every request is signed by an integration's API key (HMAC over timestamp, method, path and body;
`coffer.integrations`), rate-limited per key, and parsed strictly (no unknown fields, no
duplicate keys, no floats, bounded depth). A withdrawal request needs an `Idempotency-Key`: the
same key again gives the same answer and never a second request. Feed pages are signed back with
the integration's secret. Nothing here moves money except through the withdrawal desk.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from coffer.errors import CofferError
from coffer.integrations import Integration, IntegrationStore, sign_feed
from coffer.integrations.hmac_auth import (
    HEADER_KEY,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    parse_nonce,
    parse_timestamp,
)
from coffer.integrations.store import PENDING
from coffer.keyholder.limits import json_depth
from coffer.pipeline.desk import FEED_PAGE_MAX, CustodyDesk
from coffer.policy.errors import PolicyRefused
from coffer.policy.request import parse_request
from coffer.web.sessions import Bucket, RateLimiter

__all__ = ["ExchangeApi", "exchange_router", "BODY_BYTES_MAX", "JSON_DEPTH_MAX", "API_BUCKET", "BadRequest"]

BODY_BYTES_MAX = 16 * 1024
JSON_DEPTH_MAX = 4
API_BUCKET = Bucket(capacity=1_000, refill_s=0.005)
AMOUNT_MINOR_MAX = 2**63 - 1
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_WITHDRAWAL_ID = re.compile(r"^[0-9a-f]{64}$")
_ASSET = re.compile(r"^[A-Z0-9]{2,10}$")


class BadRequest(CofferError):
    """The body or a parameter is malformed; `rule` names the check."""

    def __init__(self, message: str, *, rule: str = "request.malformed") -> None:
        super().__init__(message)
        self.rule = rule


@dataclass
class ExchangeApi:
    """What the router needs: the desk, the integrations, a clock, a limiter."""

    desk: CustodyDesk
    integrations: IntegrationStore
    clock: Callable[[], datetime]
    limiter: RateLimiter


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BadRequest(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_float(text: str) -> Any:
    raise BadRequest("numbers must be whole (amounts are integers of minor units)")


def parse_body(raw: bytes, fields: frozenset[str]) -> dict[str, Any]:
    """A JSON object with exactly `fields`, strictly parsed."""
    if len(raw) > BODY_BYTES_MAX:
        raise BadRequest(f"body over {BODY_BYTES_MAX} bytes", rule="request.too_large")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("body is not UTF-8") from None
    if json_depth(raw) > JSON_DEPTH_MAX:
        raise BadRequest(f"JSON nested deeper than {JSON_DEPTH_MAX}", rule="request.too_deep")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_float=_no_float,
                           parse_constant=_no_float)
    except ValueError as exc:
        raise BadRequest(f"body is not JSON: {exc}") from None
    if not isinstance(value, dict) or set(value) != fields:
        raise BadRequest(f"body must be an object with exactly the fields {sorted(fields)}")
    return value


def _client_id(value: object) -> str:
    if not isinstance(value, str) or not _CLIENT_ID.match(value):
        raise BadRequest("client_id must be 1..64 letters, digits, '.', '_' or '-'")
    return value


def _asset(value: object) -> str:
    if not isinstance(value, str) or not _ASSET.match(value):
        raise BadRequest("asset must be an asset code such as BTC")
    return value


def _withdrawal_id(value: str) -> str:
    if not _WITHDRAWAL_ID.match(value):
        raise BadRequest("withdrawal id must be 64 lowercase hex characters")
    return value


def exchange_router(api: ExchangeApi) -> APIRouter:
    router = APIRouter(prefix="/api/v1/exchange", tags=["exchange"])

    async def authenticated(request: Request) -> tuple[Integration, bytes]:
        body = await request.body()
        if len(body) > BODY_BYTES_MAX:
            raise BadRequest(f"body over {BODY_BYTES_MAX} bytes", rule="request.too_large")
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        now = api.clock()
        integration = api.integrations.authenticate(
            request.headers.get(HEADER_KEY), timestamp_s=parse_timestamp(request.headers.get(HEADER_TIMESTAMP)),
            nonce=parse_nonce(request.headers.get(HEADER_NONCE)),
            method=request.method, path=path, body=body, signature=request.headers.get(HEADER_SIGNATURE), now=now)
        api.limiter.hit("integration", integration.key_id, now_s=now.timestamp())
        return integration, body

    _routes_accounts(router, api, authenticated)
    _routes_withdrawals(router, api, authenticated)
    _routes_feed(router, api, authenticated)
    return router


def _routes_accounts(router: APIRouter, api: ExchangeApi, authenticated: Any) -> None:
    @router.post("/accounts", status_code=201, summary="Open a client's custody accounts (idempotent)")
    def open_account(auth: tuple[Integration, bytes] = Depends(authenticated)) -> dict[str, Any]:
        body = parse_body(auth[1], frozenset({"client_id"}))
        return api.desk.open_account(_client_id(body["client_id"]), now=api.clock())

    @router.get("/accounts/{client_id}/balances", summary="A client's available and held balances per asset")
    def balances(client_id: str, auth: tuple[Integration, bytes] = Depends(authenticated)) -> dict[str, Any]:
        return {"client_id": client_id, "balances": api.desk.balances(_client_id(client_id))}

    @router.get("/accounts/{client_id}/deposit-address", summary="The client's own deposit address for an asset")
    def deposit_address(client_id: str, asset: str,
                        auth: tuple[Integration, bytes] = Depends(authenticated)) -> dict[str, Any]:
        address = api.desk.deposit_address(_client_id(client_id), _asset(asset), now=api.clock())
        return {"client_id": client_id, "asset": asset, "address": address}

    @router.get("/accounts/{client_id}/deposits", summary="The client's deposits and their state")
    def deposits(client_id: str, auth: tuple[Integration, bytes] = Depends(authenticated)) -> dict[str, Any]:
        return {"client_id": client_id, "deposits": api.desk.deposits(_client_id(client_id))}


def _routes_withdrawals(router: APIRouter, api: ExchangeApi, authenticated: Any) -> None:
    fields = frozenset({"client_id", "asset", "amount_minor", "destination"})

    @router.post("/withdrawals", status_code=201, summary="Request a withdrawal (needs an Idempotency-Key header)")
    def request_withdrawal(request: Request,
                           auth: tuple[Integration, bytes] = Depends(authenticated)) -> JSONResponse:
        integration, raw = auth
        key = request.headers.get("Idempotency-Key")
        if key is None:
            raise BadRequest("an Idempotency-Key header is required", rule="request.idempotency_key")
        stored = api.integrations.replay(integration.key_id, key, raw)
        if stored is None:
            body = parse_body(raw, fields)
            amount = body["amount_minor"]
            if type(amount) is not int or not 0 < amount <= AMOUNT_MINOR_MAX:
                raise BadRequest("amount_minor must be a positive integer of minor units")
            destination = body["destination"]
            if not isinstance(destination, str) or not 1 <= len(destination) <= 128 or not destination.isascii():
                raise BadRequest("destination must be an address of 1..128 ASCII characters")
            document = api.desk.new_withdrawal(_client_id(body["client_id"]), _asset(body["asset"]), amount,
                                               destination, now=api.clock())
            stored = api.integrations.begin(integration.key_id, key, raw, {"request": document.encode().decode()},
                                            now=api.clock())
        if stored.status != PENDING:
            return JSONResponse(stored.body, status_code=stored.status, headers={"Idempotent-Replayed": "true"})
        # Begun here or by an earlier try that was cut short: submit that same document (each step once).
        pending = parse_request(str(stored.body["request"]).encode())
        try:
            status, answer_body = 201, api.desk.submit_withdrawal(pending, now=api.clock()).as_json()
        except PolicyRefused as refusal:
            # A refusal is an answer too: the same key again must not make a second request.
            status, answer_body = 403, {"error": "refused", "rule": refusal.rule, "detail": str(refusal)}
        answer = api.integrations.finish(integration.key_id, key, status, answer_body)
        return JSONResponse(answer.body, status_code=answer.status)

    @router.get("/withdrawals/{withdrawal_id}", summary="Where a withdrawal stands")
    def withdrawal(withdrawal_id: str, auth: tuple[Integration, bytes] = Depends(authenticated)) -> dict[str, Any]:
        return api.desk.withdrawal(_withdrawal_id(withdrawal_id)).as_json()

    @router.post("/withdrawals/{withdrawal_id}/cancel", summary="Cancel a withdrawal no signer can have yet")
    def cancel(withdrawal_id: str, auth: tuple[Integration, bytes] = Depends(authenticated)) -> dict[str, Any]:
        parse_body(auth[1] or b"{}", frozenset())
        by = f"integration:{auth[0].key_id}"
        return api.desk.cancel(_withdrawal_id(withdrawal_id), by=by, now=api.clock()).as_json()


def _routes_feed(router: APIRouter, api: ExchangeApi, authenticated: Any) -> None:
    @router.get("/events", summary="Custody events after a cursor, signed with the integration's secret")
    def events(after: int = 0, limit: int = 100,
               auth: tuple[Integration, bytes] = Depends(authenticated)) -> Response:
        if not 1 <= limit <= FEED_PAGE_MAX or after < 0:
            raise BadRequest(f"after must be ≥ 0 and limit 1..{FEED_PAGE_MAX}")
        found, cursor = api.desk.events(after=after, limit=limit)
        body = json.dumps({"events": found, "next": cursor}, sort_keys=True, separators=(",", ":")).encode()
        signature = sign_feed(api.integrations.secret_for_feed(auth[0].key_id), body)
        return Response(content=body, media_type="application/json", headers={"X-Coffer-Feed-Signature": signature})
