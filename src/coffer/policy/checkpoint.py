"""HSM-signed checkpoints of the audit chain: (seq, head digest) signed by a non-extractable key.

A checkpoint lets anyone holding the public key prove later that the chain was not cut or
rewritten behind it (`AuditLog.verify_chain(expect_head=...)`).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from coffer.audit import AuditChainBroken, AuditLog
from coffer.canonical import canonical_digest
from coffer.hsm import Hsm, KeyKind, normalize_low_s
from coffer.policy.attestation import P256_ORDER
from coffer.policy.errors import CheckpointInvalid

__all__ = ["AuditCheckpoint", "sign_checkpoint", "verify_checkpoint", "checkpoint_message",
           "CHECKPOINT_KEY_LABEL"]

CHECKPOINT_KEY_LABEL = "coffer-audit-checkpoint"
CHECKPOINT_TAG = "coffer/audit-checkpoint/v1"


@dataclass(frozen=True, slots=True)
class AuditCheckpoint:
    seq: int
    head_digest: str
    at_s: int
    signature: bytes


def checkpoint_message(seq: int, head_digest: str, at_s: int) -> bytes:
    return canonical_digest({"seq": seq, "head": head_digest, "at_s": at_s}, tag=CHECKPOINT_TAG)


def sign_checkpoint(audit: AuditLog, hsm: Hsm, *, now_s: int, label: str = CHECKPOINT_KEY_LABEL) -> AuditCheckpoint:
    """Sign the current head of the audit chain with the HSM (key created on first use)."""
    if not hsm.has_key(label):
        hsm.generate_key(label, KeyKind.P256)
    seq, head = audit.head()
    signature = normalize_low_s(hsm.sign(label, checkpoint_message(seq, head, now_s)), P256_ORDER)
    return AuditCheckpoint(seq, head, now_s, signature)


def verify_checkpoint(checkpoint: AuditCheckpoint, public_key: bytes, audit: AuditLog | None = None) -> int:
    """Verify the HSM signature and, given `audit`, that the chain still reaches the checkpoint."""
    r = int.from_bytes(checkpoint.signature[:32], "big")
    s = int.from_bytes(checkpoint.signature[32:], "big")
    if len(checkpoint.signature) != 64 or not (0 < r < P256_ORDER and 0 < s <= P256_ORDER // 2):
        raise CheckpointInvalid("checkpoint signature malformed")
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_key)
        key.verify(utils.encode_dss_signature(r, s),
                   checkpoint_message(checkpoint.seq, checkpoint.head_digest, checkpoint.at_s),
                   ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    except (InvalidSignature, ValueError):
        raise CheckpointInvalid("checkpoint signature does not verify") from None
    if audit is None:
        return checkpoint.seq
    try:
        return audit.verify_chain(expect_head=(checkpoint.seq, checkpoint.head_digest))
    except AuditChainBroken as exc:
        raise CheckpointInvalid(f"audit chain does not match the checkpoint: {exc}") from None
