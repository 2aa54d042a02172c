"""Helpers the console's routers share: its parts, the operator session, role checks, JSON bodies."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request

from coffer.policy.roles import Operator, Role
from coffer.web.console.errors import OperatorRefused
from coffer.web.console.parts import ConsoleParts
from coffer.web.deps import context, current_session
from coffer.web.errors import NotSignedIn
from coffer.web.sessions import Session

__all__ = ["parts", "operator_api", "operator_page", "operator_of", "require_role", "OPERATOR_KIND", "SIGNIN_PATH"]

OPERATOR_KIND = "operator"
SIGNIN_PATH = "/console/signin"


def parts(request: Request) -> ConsoleParts:
    value = context(request).extras["console"]
    assert isinstance(value, ConsoleParts)  # set by install_console
    return value


def operator_api(request: Request) -> Session:
    """The operator's session for API routes: 401 for anonymous users and clients."""
    session = current_session(request)
    if session is None or session.kind != OPERATOR_KIND:
        raise NotSignedIn("operators only: sign in with your security key")
    return session


def operator_page(request: Request) -> Session:
    """The operator's session for pages: anonymous users and clients go to the console sign-in."""
    session = current_session(request)
    if session is None or session.kind != OPERATOR_KIND:
        raise HTTPException(status_code=303, headers={"Location": SIGNIN_PATH})
    return session


def operator_of(request: Request, session: Session) -> Operator:
    registry = parts(request).policy.operators()
    if session.subject not in registry:
        raise OperatorRefused(f"{session.subject} is no longer an operator")
    operator: Operator = registry.get(session.subject)
    return operator


def require_role(request: Request, session: Session, *roles: Role) -> Operator:
    operator = operator_of(request, session)
    if not any(operator.has(role) for role in roles):
        names = " or ".join(role.value for role in roles)
        raise OperatorRefused(f"{operator.operator_id} does not hold the {names} role")
    return operator


def json_safe(value: Any) -> Any:
    """Large integers (minor units) as strings, so JavaScript never rounds them."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
