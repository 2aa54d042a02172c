"""Operator enrolment and sign-in with security keys (WebAuthn, the `webauthn` package).

Enrolment: the operator proves who they are with their Ed25519 operator key (the one of the
CLI, issue 4) by signing `enrol_message(operator_id, challenge)`, and registers a security key in
the same ceremony; the key becomes their "webauthn" credential in the policy service, which
signers and co-signers pin. Sign-in: an assertion over a fresh random challenge. Both refuse
clients; neither ever sees a private key.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import nacl.exceptions
import nacl.signing
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from coffer.policy.errors import PolicyError
from coffer.policy.webauthn import WEBAUTHN_SCHEME, WebAuthnCredential
from coffer.web.console.common import OPERATOR_KIND, operator_api, parts
from coffer.web.console.errors import CeremonyRefused
from coffer.web.console.parts import ConsoleParts
from coffer.web.deps import SESSION_COOKIE, client_address, context, limit, require_csrf, set_cookie
from coffer.web.sessions import Session

__all__ = ["router", "enrol_message", "AssertionBody", "credential_descriptor", "assertion_parts"]

ENROL_TAG = b"coffer/console/enrol/v1\x00"
router = APIRouter(prefix="/api/v1/console", tags=["console: operator sign-in"])
_B64 = r"^[A-Za-z0-9_-]*={0,2}$"


def enrol_message(operator_id: str, challenge: bytes) -> bytes:
    """The bytes an operator signs with their Ed25519 key to enrol a security key."""
    return ENROL_TAG + operator_id.encode() + b"\x00" + challenge


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise CeremonyRefused("malformed base64url") from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OperatorBody(_Strict):
    operator_id: str = Field(..., pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")


class AttestationResponse(_Strict):
    clientDataJSON: str = Field(..., max_length=4096, pattern=_B64)
    attestationObject: str = Field(..., max_length=16384, pattern=_B64)
    transports: list[str] = Field(default_factory=list, max_length=8)


class RegistrationBody(_Strict):
    ceremony: str = Field(..., max_length=64)
    id: str = Field(..., max_length=1400, pattern=_B64)
    response: AttestationResponse
    ed25519_signature: str = Field(..., pattern=r"^[0-9a-f]{128}$")


class AssertionResponse(_Strict):
    clientDataJSON: str = Field(..., max_length=4096, pattern=_B64)
    authenticatorData: str = Field(..., max_length=4096, pattern=_B64)
    signature: str = Field(..., max_length=1400, pattern=_B64)
    userHandle: str | None = Field(None, max_length=128, pattern=_B64)


class AssertionBody(_Strict):
    ceremony: str = Field(..., max_length=64)
    id: str = Field(..., max_length=1400, pattern=_B64)
    response: AssertionResponse


def credential_descriptor(console: ConsoleParts, operator_id: str) -> WebAuthnCredential:
    registry = console.policy.operators()
    stored = registry.get(operator_id).key_for(WEBAUTHN_SCHEME) if operator_id in registry else None
    if stored is None:
        raise CeremonyRefused(f"no security key registered for {operator_id}")
    try:
        return WebAuthnCredential.parse(stored)
    except PolicyError as exc:
        raise CeremonyRefused(str(exc)) from None


def assertion_parts(body: AssertionBody) -> dict[str, Any]:
    """The assertion in the JSON form `webauthn` parses."""
    response: dict[str, Any] = {"clientDataJSON": body.response.clientDataJSON,
                                "authenticatorData": body.response.authenticatorData,
                                "signature": body.response.signature}
    if body.response.userHandle:
        response["userHandle"] = body.response.userHandle
    return {"id": body.id, "rawId": body.id, "type": "public-key", "response": response}


@router.post("/webauthn/register/options", summary="Start enrolling a security key (operators)")
def register_options(request: Request, body: OperatorBody) -> dict[str, Any]:
    limit(request, "signin_address", client_address(request))
    console = parts(request)
    if body.operator_id not in console.policy.operators():
        raise CeremonyRefused(f"no operator {body.operator_id}")
    options = generate_registration_options(
        rp_id=console.rp_id, rp_name=console.rp_name, user_name=body.operator_id,
        user_id=body.operator_id.encode(), authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.DISCOURAGED, user_verification=UserVerificationRequirement.PREFERRED))
    ceremony = console.ceremonies.start("register", body.operator_id, options.challenge)
    return {"ceremony": ceremony, "options": json.loads(options_to_json(options)),
            "enrol_message": enrol_message(body.operator_id, options.challenge).hex()}


@router.post("/webauthn/register", summary="Finish enrolling: security key attestation plus the operator key's signature")
def register(request: Request, body: RegistrationBody) -> dict[str, str]:
    console = parts(request)
    ceremony = console.ceremonies.take(body.ceremony, "register")
    operator = console.policy.operators().get(ceremony.subject)
    try:
        nacl.signing.VerifyKey(operator.ed25519_public_key).verify(
            enrol_message(ceremony.subject, ceremony.challenge), bytes.fromhex(body.ed25519_signature))
    except (nacl.exceptions.BadSignatureError, ValueError):
        raise CeremonyRefused("the operator key's signature over the enrolment message does not verify") from None
    credential = {"id": body.id, "rawId": body.id, "type": "public-key",
                  "response": body.response.model_dump(exclude={"transports"})}
    try:
        verified = verify_registration_response(credential=credential, expected_challenge=ceremony.challenge,
                                                expected_rp_id=console.rp_id, expected_origin=list(console.origins))
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise CeremonyRefused(f"the security key's registration does not verify: {exc}") from None
    stored = WebAuthnCredential(console.rp_id, console.origins, verified.credential_id,
                                verified.credential_public_key)
    console.policy.add_credential(ceremony.subject, WEBAUTHN_SCHEME, stored.encode(), by=ceremony.subject,
                                  now=context(request).clock())
    return {"operator_id": ceremony.subject, "credential_id": _b64(verified.credential_id)}


@router.post("/webauthn/signin/options", summary="Start an operator sign-in with a security key")
def signin_options(request: Request, body: OperatorBody) -> dict[str, Any]:
    limit(request, "signin_address", client_address(request))
    console = parts(request)
    stored = credential_descriptor(console, body.operator_id)
    options = generate_authentication_options(
        rp_id=console.rp_id, allow_credentials=[PublicKeyCredentialDescriptor(id=stored.credential_id)],
        user_verification=UserVerificationRequirement.PREFERRED)
    ceremony = console.ceremonies.start("signin", body.operator_id, options.challenge)
    return {"ceremony": ceremony, "options": json.loads(options_to_json(options))}


@router.post("/webauthn/signin", summary="Finish the sign-in; sets the operator's session cookie")
def signin(request: Request, body: AssertionBody) -> Response:
    console = parts(request)
    ceremony = console.ceremonies.take(body.ceremony, "signin")
    stored = credential_descriptor(console, ceremony.subject)
    if _unb64(body.id) != stored.credential_id:
        raise CeremonyRefused("another security key answered")
    try:
        verify_authentication_response(credential=assertion_parts(body), expected_challenge=ceremony.challenge,
                                       expected_rp_id=stored.rp_id, expected_origin=list(stored.origins),
                                       credential_public_key=stored.public_key, credential_current_sign_count=0)
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise CeremonyRefused(f"the security key's answer does not verify: {exc}") from None
    ctx = context(request)
    token, session = ctx.session_store.create(OPERATOR_KIND, ceremony.subject, now=ctx.clock())
    console.audit.append(ceremony.subject, "console.signin", {"operator_id": ceremony.subject,
                                                              "address": client_address(request)}, at=ctx.clock())
    response = JSONResponse({"operator_id": ceremony.subject, "csrf_token": session.csrf_token})
    set_cookie(request, response, SESSION_COOKIE, token, max_age=None)
    return response


@router.post("/signout", summary="End the operator's session")
def signout(request: Request, session: Session = Depends(operator_api)) -> Response:
    require_csrf(request, session, None)
    context(request).session_store.revoke(session)
    response = JSONResponse({"signed_out": session.subject})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
