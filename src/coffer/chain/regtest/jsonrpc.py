"""Bitcoin Core's JSON-RPC request semantics over one HTTP body: versions, batches, notifications.

Pure apart from the dispatcher it calls: `execute_http(dispatcher, body)` returns (HTTP status,
reply text) exactly as Core's httprpc.cpp decides them. 1.0/1.1 requests (no "jsonrpc", or "1.0")
get "result" and "error" both, and HTTP errors; 2.0 requests get only the one that applies and
always HTTP 200; a 2.0 request without "id" is a notification and gets 204 and no body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from coffer.chain.errors import ChainError
from coffer.chain.regtest.jsonout import dumps

__all__ = ["execute_http", "RpcFault", "Caller", "RPC_INVALID_REQUEST", "RPC_METHOD_NOT_FOUND",
           "RPC_PARSE_ERROR", "RPC_MISC_ERROR", "JSON_DEPTH_MAX"]

log = structlog.get_logger("coffer.chain.rpc")

RPC_MISC_ERROR = -1
RPC_METHOD_NOT_FOUND = -32601
RPC_PARSE_ERROR = -32700
RPC_INVALID_REQUEST = -32600
JSON_DEPTH_MAX = 512  # Core's UniValue refuses deeper nesting; so does this, before Python's stack does
_NO_ID = object()


class RpcFault(Exception):
    """A JSON-RPC error: Core's numeric code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Caller(Protocol):
    def call(self, method: object, params: object) -> object: ...


@dataclass(slots=True)
class _Request:
    """Core's JSONRPCRequest: one object reused through a batch (so, as in Core, a malformed batch
    element's error carries the id and version of the element before it)."""

    id: object = None  # present and null until a request says otherwise
    version: int = 1
    method: str = ""
    params: object = None

    def parse(self, value: object) -> None:
        if not isinstance(value, dict):
            raise RpcFault(RPC_INVALID_REQUEST, "Invalid Request object")
        self.id = value.get("id", _NO_ID)
        self.version = 1
        version = value.get("jsonrpc")
        if version is not None:
            if not isinstance(version, str):
                raise RpcFault(RPC_INVALID_REQUEST, "jsonrpc field must be a string")
            if version not in ("1.0", "2.0"):
                raise RpcFault(RPC_INVALID_REQUEST, "JSON-RPC version not supported")
            self.version = 2 if version == "2.0" else 1
        method = value.get("method")
        if method is None:
            raise RpcFault(RPC_INVALID_REQUEST, "Missing method")
        if not isinstance(method, str):
            raise RpcFault(RPC_INVALID_REQUEST, "Method must be a string")
        self.method = method
        params = value.get("params")
        if params is not None and not isinstance(params, list | dict):
            raise RpcFault(RPC_INVALID_REQUEST, "Params must be an array or object")
        self.params = params

    @property
    def notification(self) -> bool:
        return self.id is _NO_ID and self.version == 2


def _reply(result: object, error: RpcFault | None, request: _Request) -> dict[str, object]:
    reply: dict[str, object] = {"jsonrpc": "2.0"} if request.version == 2 else {}
    if error is None:
        reply["result"] = result
        if request.version == 1:
            reply["error"] = None
    else:
        if request.version == 1:
            reply["result"] = None
        reply["error"] = {"code": error.code, "message": error.message}
    if request.id is not _NO_ID:
        reply["id"] = request.id
    return reply


def _invoke(caller: Caller, request: _Request) -> object:
    try:
        return caller.call(request.method, request.params)
    except RpcFault:
        raise
    except ChainError as exc:
        raise RpcFault(RPC_MISC_ERROR, str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - one bad call must not take the server down
        log.exception("rpc_internal_error", method=request.method[:64])
        raise RpcFault(RPC_MISC_ERROR, f"Internal error: {type(exc).__name__}") from None


def _execute_catching(caller: Caller, request: _Request) -> dict[str, object]:
    try:
        return _reply(_invoke(caller, request), None, request)
    except RpcFault as fault:
        return _reply(None, fault, request)


def _error_reply(fault: RpcFault, request: _Request) -> tuple[int, str]:
    status = {RPC_INVALID_REQUEST: 400, RPC_METHOD_NOT_FOUND: 404}.get(fault.code, 500)
    return status, dumps(_reply(None, fault, request))


def _first_key_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        result.setdefault(key, value)
    return result


def _depth(body: bytes) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            escaped, in_string = (False, True) if escaped else (byte == 0x5C, byte != 0x22)
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _loads(body: bytes) -> object:
    if _depth(body) > JSON_DEPTH_MAX:
        raise ValueError("too deep")
    return json.loads(body, object_pairs_hook=_first_key_wins)


def _batch(caller: Caller, items: list[object], request: _Request) -> tuple[int, str]:
    replies = []
    for item in items:
        try:
            request.parse(item)
            response = _execute_catching(caller, request)
        except RpcFault as fault:
            response = _reply(None, fault, request)
        if not request.notification:
            replies.append(response)
    if not replies and items:
        return 204, ""  # a non-empty batch of notifications only: no reply (an empty batch gets [])
    return 200, dumps(replies)


def execute_http(caller: Caller, body: bytes) -> tuple[int, str]:
    """Core's HTTPReq_JSONRPC after authentication: (HTTP status, reply body without the newline)."""
    request = _Request()
    try:
        value = _loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _error_reply(RpcFault(RPC_PARSE_ERROR, "Parse error"), request)
    try:
        if isinstance(value, dict):
            request.parse(value)
            if request.version == 2:
                reply = _execute_catching(caller, request)
            else:
                reply = _reply(_invoke(caller, request), None, request)
            return (204, "") if request.notification else (200, dumps(reply))
        if isinstance(value, list):
            return _batch(caller, value, request)
        raise RpcFault(RPC_PARSE_ERROR, "Top-level object parse error")
    except RpcFault as fault:
        return _error_reply(fault, request)
