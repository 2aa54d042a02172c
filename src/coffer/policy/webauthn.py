"""WebAuthn approvals: an operator's security key signs the approval challenge.

The challenge of the WebAuthn assertion is `approval_message(approval)`, so the assertion binds
the request digest, the operator, the role and the expiry exactly as an Ed25519 approval does.
The operator's registered credential (scheme "webauthn", pinned by signers and co-signers with
the operators' other keys) is a `WebAuthnCredential`: relying-party id, allowed origins,
credential id and COSE public key. The proof is the assertion: credential id, authenticator data,
client data JSON and signature. Verification is pure: no database, no clock, no counter store
(a signer cannot keep a shared signature counter, so cloned-key detection is not done here).
The authenticator must have verified the user (PIN or biometric), not only seen a touch.

Written for issue 12 (the console); it lives here so that signers load it without the web app.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

from coffer.canonical import canonical_json
from coffer.policy.approval import Approval, approval_message
from coffer.policy.errors import ApprovalRefused, PolicyError
from coffer.policy.roles import Operator

__all__ = ["WEBAUTHN_SCHEME", "WebAuthnCredential", "WebAuthnAssertion", "WebAuthnApprovalVerifier",
           "CREDENTIAL_BYTES_MAX", "FIELD_BYTES_MAX"]

WEBAUTHN_SCHEME = "webauthn"
CREDENTIAL_FORMAT = "coffer-webauthn-credential/1"
CREDENTIAL_BYTES_MAX = 2048
FIELD_BYTES_MAX = 1024
ORIGINS_MAX = 8


def _b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class WebAuthnCredential:
    """An operator's registered security key, as stored by PolicyService.add_credential."""

    rp_id: str
    origins: tuple[str, ...]
    credential_id: bytes
    public_key: bytes  # COSE_Key, as the authenticator gave it at registration

    def encode(self) -> bytes:
        return canonical_json({"format": CREDENTIAL_FORMAT, "rp_id": self.rp_id, "origins": list(self.origins),
                               "credential_id": self.credential_id.hex(), "public_key": self.public_key.hex()})

    @classmethod
    def parse(cls, data: bytes) -> WebAuthnCredential:
        if len(data) > CREDENTIAL_BYTES_MAX:
            raise PolicyError("WebAuthn credential too large")
        try:
            doc = json.loads(data)
            if not isinstance(doc, dict) or set(doc) != {"format", "rp_id", "origins", "credential_id", "public_key"}:
                raise ValueError("unexpected fields")
            if doc["format"] != CREDENTIAL_FORMAT:
                raise ValueError("unknown format")
            origins = tuple(str(o) for o in doc["origins"])
            credential = cls(str(doc["rp_id"]), origins, bytes.fromhex(doc["credential_id"]),
                             bytes.fromhex(doc["public_key"]))
        except (ValueError, TypeError, KeyError) as exc:
            raise PolicyError(f"malformed WebAuthn credential: {exc}") from None
        if not credential.rp_id or not 1 <= len(origins) <= ORIGINS_MAX or not credential.credential_id:
            raise PolicyError("malformed WebAuthn credential: empty rp id, origins or credential id")
        if canonical_json(doc) != data:
            raise PolicyError("malformed WebAuthn credential: not canonical")
        return credential


@dataclass(frozen=True, slots=True)
class WebAuthnAssertion:
    """The browser's answer to navigator.credentials.get(), carried as an approval's proof."""

    credential_id: bytes
    authenticator_data: bytes
    client_data_json: bytes
    signature: bytes

    def encode(self) -> bytes:
        parts = (self.credential_id, self.authenticator_data, self.client_data_json, self.signature)
        if any(len(part) > FIELD_BYTES_MAX for part in parts):
            raise PolicyError("WebAuthn assertion field too large")
        return b"".join(struct.pack(">H", len(part)) + part for part in parts)

    @classmethod
    def parse(cls, data: bytes) -> WebAuthnAssertion:
        parts: list[bytes] = []
        offset = 0
        for _ in range(4):
            if offset + 2 > len(data):
                raise ApprovalRefused("WebAuthn proof truncated", rule="approval.signature")
            (length,) = struct.unpack_from(">H", data, offset)
            offset += 2
            if length > FIELD_BYTES_MAX or offset + length > len(data):
                raise ApprovalRefused("WebAuthn proof truncated", rule="approval.signature")
            parts.append(data[offset:offset + length])
            offset += length
        if offset != len(data):
            raise ApprovalRefused("WebAuthn proof has trailing bytes", rule="approval.signature")
        return cls(parts[0], parts[1], parts[2], parts[3])


class WebAuthnApprovalVerifier:
    """The operator's registered security key asserted over approval_message(approval)."""

    @property
    def scheme(self) -> str:
        return WEBAUTHN_SCHEME

    def verify_proof(self, approval: Approval, operator: Operator) -> None:
        from webauthn import verify_authentication_response
        from webauthn.helpers.exceptions import WebAuthnException

        stored = operator.key_for(WEBAUTHN_SCHEME)
        if stored is None:
            raise ApprovalRefused(f"{operator.operator_id} has no security key", rule="approval.scheme")
        try:
            credential = WebAuthnCredential.parse(stored)
        except PolicyError as exc:
            raise ApprovalRefused(str(exc), rule="approval.scheme") from None
        assertion = WebAuthnAssertion.parse(approval.proof)
        if assertion.credential_id != credential.credential_id:
            raise ApprovalRefused(f"approval by {operator.operator_id} used another security key",
                                  rule="approval.signature")
        response = {"id": _b64url(assertion.credential_id), "rawId": _b64url(assertion.credential_id),
                    "type": "public-key", "response": {
                        "authenticatorData": _b64url(assertion.authenticator_data),
                        "clientDataJSON": _b64url(assertion.client_data_json),
                        "signature": _b64url(assertion.signature)}}
        try:
            verify_authentication_response(credential=response, expected_challenge=approval_message(approval),
                                           expected_rp_id=credential.rp_id, expected_origin=list(credential.origins),
                                           credential_public_key=credential.public_key,
                                           credential_current_sign_count=0, require_user_verification=True)
        except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
            raise ApprovalRefused(f"security-key approval of {operator.operator_id} does not verify: {exc}",
                                  rule="approval.signature") from None
