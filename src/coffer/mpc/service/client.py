"""The coordinator's connection to one co-signer (FROST and DKLs23 routes alike), on the one
key-holder client (`coffer.keyholder.client`): mutual TLS, the server certificate pinned to
"cosigner-N", a pool of kept-open connections and, for FROST's many short calls, pipelining
through `/v1/batch`.

A refusal comes back as the typed error the co-signer raised, naming the co-signer
(`CosignerRefused.cosigner`) and any party it blamed; a dead co-signer raises
`CosignerUnavailable`; a reply that is not a JSON object raises `ProtocolViolation(sender=N)`.
"""

from __future__ import annotations

from typing import Any, Final

from coffer.keyholder.client import POOL_MAX, RPC_TIMEOUT_S, KeyholderClient, ReplyMalformed
from coffer.keyholder.errors import KeyholderUnavailable
from coffer.mpc.errors import InvalidSignatureShare
from coffer.mpc.service.errors import (
    CosignerRefused,
    CosignerUnavailable,
    OpaqueMessageRefused,
    ProtocolViolation,
    SessionReplayed,
    SpendNotApproved,
    UnknownKey,
)
from coffer.tls import TlsFiles

__all__ = ["CosignerClient", "RPC_TIMEOUT_S", "POOL_MAX"]

MESSAGE_CHARS_MAX: Final = 500


class CosignerClient:
    """Calls one co-signer's endpoints. Thread-safe."""

    def __init__(self, cosigner_id: int, port: int, tls: TlsFiles, *, host: str = "127.0.0.1",
                 timeout_s: float = RPC_TIMEOUT_S, batching: bool = True, tls_name: str | None = None) -> None:
        self.cosigner_id = cosigner_id
        self.port = port
        self._transport = KeyholderClient(f"cosigner-{cosigner_id}", port, tls, host=host, timeout_s=timeout_s,
                                          batching=batching, tls_name=tls_name)

    def __repr__(self) -> str:
        return f"CosignerClient(id={self.cosigner_id}, port={self.port})"

    def close(self) -> None:
        self._transport.close()

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One request; refusals raise the co-signer's typed error."""
        try:
            status, reply = self._transport.call(path, body)
        except ReplyMalformed as error:
            raise ProtocolViolation(error.reason, sender=self.cosigner_id) from None
        except KeyholderUnavailable as error:
            raise CosignerUnavailable(self.cosigner_id, error.reason) from None
        if status == 200:
            return reply
        raise _error(self.cosigner_id, status, reply)


def _error(cosigner: int, status: int, body: dict[str, Any]) -> Exception:
    """The typed error for a refusal in the key holders' one error shape."""
    kind, message = str(body.get("error", "")), str(body.get("message", ""))[:MESSAGE_CHARS_MAX]
    rule = str(body.get("rule") or kind or "refused")
    culprits = tuple(c for c in body.get("culprits") or () if isinstance(c, int) and not isinstance(c, bool))
    if kind == "SessionReplayed":
        return SessionReplayed(message, cosigner=cosigner)
    if kind == "OpaqueMessageRefused":
        return OpaqueMessageRefused(message, cosigner=cosigner)
    if kind == "SpendNotApproved":
        return SpendNotApproved(message, rule=rule, cosigner=cosigner)
    if kind == "UnknownKey" or (status == 404 and kind != "RouteUnknown"):
        return UnknownKey(f"co-signer {cosigner}: {message}")
    if kind == "InvalidSignatureShare" and culprits:
        return InvalidSignatureShare(message, culprits=culprits)
    if status == 400 and "sender" in body:
        sender = body["sender"]
        # A co-signer blaming a relayed message names its author; None means it blames the coordinator.
        return ProtocolViolation(f"co-signer {cosigner} refused a message: {message}",
                                 sender=sender if isinstance(sender, int) and not isinstance(sender, bool) else None)
    return CosignerRefused(message, rule=rule, cosigner=cosigner, culprits=culprits)
