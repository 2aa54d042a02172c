"""How an integration signs a request to the exchange API, and how the coordinator checks it (pure).

The string signed is the timestamp, a fresh nonce, the method, the path with its query and the
SHA-256 of the body, one per line; the signature is HMAC-SHA256 under the integration's secret, in hex. A
timestamp more than `SKEW_S_MAX` from the coordinator's clock is refused, and so is a signature
seen before (the caller keeps the replay record), so a captured request can't be sent again.
"""

from __future__ import annotations

import hashlib
import hmac

from coffer.integrations.errors import AuthenticationFailed

__all__ = ["signing_string", "sign_request", "verify_request", "sign_feed", "SKEW_S_MAX",
           "HEADER_KEY", "HEADER_TIMESTAMP", "HEADER_NONCE", "HEADER_SIGNATURE", "parse_nonce", "parse_timestamp", "SIGNATURE_HEX_CHARS"]

SKEW_S_MAX = 300
SIGNATURE_HEX_CHARS = 64
HEADER_KEY = "X-Coffer-Key"
HEADER_TIMESTAMP = "X-Coffer-Timestamp"
HEADER_NONCE = "X-Coffer-Nonce"
NONCE_CHARS_MIN = 16
NONCE_CHARS_MAX = 64
HEADER_SIGNATURE = "X-Coffer-Signature"


def signing_string(timestamp_s: int, nonce: str, method: str, path: str, body: bytes) -> bytes:
    return f"{timestamp_s}\n{nonce}\n{method.upper()}\n{path}\n{hashlib.sha256(body).hexdigest()}".encode()


def sign_request(secret: bytes, timestamp_s: int, nonce: str, method: str, path: str, body: bytes) -> str:
    return hmac.new(secret, signing_string(timestamp_s, nonce, method, path, body), hashlib.sha256).hexdigest()


def parse_nonce(raw: str | None) -> str:
    if raw is None or not NONCE_CHARS_MIN <= len(raw) <= NONCE_CHARS_MAX or not raw.isascii() or not raw.isalnum():
        raise AuthenticationFailed(f"nonce must be {NONCE_CHARS_MIN}..{NONCE_CHARS_MAX} letters or digits",
                                   rule="auth.nonce")
    return raw


def parse_timestamp(raw: str | None) -> int:
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise AuthenticationFailed("timestamp missing or not whole seconds", rule="auth.timestamp")
    return int(raw)


def verify_request(secret: bytes, *, timestamp_s: int, nonce: str, method: str, path: str, body: bytes, signature: str | None,
                   now_s: int) -> None:
    """Raise AuthenticationFailed unless `signature` signs this request within the clock window."""
    if abs(now_s - timestamp_s) > SKEW_S_MAX:
        raise AuthenticationFailed(f"timestamp more than {SKEW_S_MAX} s from the server's clock",
                                   rule="auth.timestamp")
    if signature is None or len(signature) != SIGNATURE_HEX_CHARS:
        raise AuthenticationFailed("signature missing or malformed", rule="auth.signature")
    expected = sign_request(secret, timestamp_s, nonce, method, path, body)
    if not hmac.compare_digest(expected, signature.lower()):
        raise AuthenticationFailed("signature does not match", rule="auth.signature")


def sign_feed(secret: bytes, body: bytes) -> str:
    """The signature an integration checks on a feed page the coordinator sends it."""
    return hmac.new(secret, b"coffer.feed\n" + body, hashlib.sha256).hexdigest()
