"""Typed refusals of the key-holder transport: each names its rule and the HTTP status it gets.

A refusal carries no secret: its message says which limit or rule was broken, never the body.
"""

from __future__ import annotations

from typing import Final

from coffer.errors import CofferError, Refused

__all__ = ["RequestRefused", "BodyTooLarge", "JsonTooDeep", "RequestMalformed", "RouteUnknown", "PeerNotAllowed",
           "ClockSkewed", "KeyholderUnavailable", "ListenAddressRefused", "check_listen_host"]


class RequestRefused(Refused):
    """A request the transport refuses before any engine sees it; `status` is its HTTP status."""

    def __init__(self, message: str, *, rule: str | None = None) -> None:
        super().__init__(message, rule=rule or _STATUS_AND_RULE[type(self)][1])

    @property
    def status(self) -> int:
        return _STATUS_AND_RULE[type(self)][0]


class BodyTooLarge(RequestRefused):
    """A body over the route table's size limit; refused before it is read."""


class JsonTooDeep(RequestRefused):
    """JSON nested deeper than the limit; refused before any parser sees it."""


class RequestMalformed(RequestRefused):
    """A request the transport cannot read: a bad Content-Length, a batch not shaped as one."""


class RouteUnknown(RequestRefused):
    """No engine mounted this method and path."""


class PeerNotAllowed(RequestRefused):
    """The caller's certificate name is not among the route's allowed peers."""


class ClockSkewed(RequestRefused):
    """The caller's clock is missing, or differs from ours by more than the bound."""


_STATUS_AND_RULE: Final[dict[type[RequestRefused], tuple[int, str]]] = {
    RequestRefused: (400, "request"), BodyTooLarge: (413, "body.size"), JsonTooDeep: (400, "json.depth"),
    RequestMalformed: (400, "request.malformed"), RouteUnknown: (404, "route.unknown"),
    PeerNotAllowed: (403, "peer.name"), ClockSkewed: (409, "clock.skew"),
}


class KeyholderUnavailable(CofferError):
    """A key holder could not be reached, or answered with something that is not a reply."""

    def __init__(self, peer: str, reason: str) -> None:
        super().__init__(f"{peer}: {reason}")
        self.peer = peer
        self.reason = reason


WILDCARD_HOSTS: Final = frozenset({"", "0.0.0.0", "::", "*"})  # noqa: S104 - the names refused here


class ListenAddressRefused(CofferError):
    """A key holder asked to listen on every interface: it binds to the one address it is given."""


def check_listen_host(host: str) -> str:
    """`host` unless it is a wildcard: a key holder is reached on one address its certificate names."""
    if host.strip() in WILDCARD_HOSTS:
        raise ListenAddressRefused(f"a key holder listens on one address, not {host!r}")
    return host
