"""Typed refusals of the key-holder transport: each names its rule and the HTTP status it gets.

A refusal carries no secret: its message says which limit or rule was broken, never the body.
"""

from __future__ import annotations

from typing import ClassVar

from coffer.errors import CofferError, Refused

__all__ = ["RequestRefused", "BodyTooLarge", "JsonTooDeep", "RequestMalformed", "RouteUnknown", "PeerNotAllowed",
           "ClockSkewed", "KeyholderUnavailable"]


class RequestRefused(Refused):
    """A request the transport refuses before any engine sees it; `status` is its HTTP status."""

    status: ClassVar[int] = 400
    default_rule: ClassVar[str] = "request"

    def __init__(self, message: str, *, rule: str | None = None) -> None:
        super().__init__(message, rule=rule or self.default_rule)


class BodyTooLarge(RequestRefused):
    status = 413
    default_rule = "body.size"


class JsonTooDeep(RequestRefused):
    status = 400
    default_rule = "json.depth"


class RequestMalformed(RequestRefused):
    status = 400
    default_rule = "request.malformed"


class RouteUnknown(RequestRefused):
    status = 404
    default_rule = "route.unknown"


class PeerNotAllowed(RequestRefused):
    status = 403
    default_rule = "peer.name"


class ClockSkewed(RequestRefused):
    status = 409
    default_rule = "clock.skew"


class KeyholderUnavailable(CofferError):
    """A key holder could not be reached, or answered with something that is not a reply."""

    def __init__(self, peer: str, reason: str) -> None:
        super().__init__(f"{peer}: {reason}")
        self.peer = peer
        self.reason = reason
