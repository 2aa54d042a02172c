"""Signed, encrypted VSS dealings: the common core of refresh and re-share.

A dealing is one dealer's Feldman VSS of a constant term the protocol fixes (zero for a refresh,
lambda_i * s_i for a re-share), with one encrypted sub-share per recipient and the dealer's host
key signature over all of it bound to the session digest. Wire layout (E = element length):

    dealer (4) | threshold (4) | commitment (threshold*E) | pubnonce (E)
    | encrypted sub-shares (32 per recipient, ascending identifier) | signature (64)

Encryption reuses EncPedPop's idea: pad_{d->j} = H("<kind> ecdh", ECDH(nonce_d, host_j) |
pubnonce_d | host_j | j | session digest) reduced to a scalar, added to the sub-share. Every
check that fails names the dealer (`InvalidDealing`): unparsable bytes, a wrong dealer field or
threshold, a bad signature, an invalid nonce, a constant commitment other than the one the
protocol fixes, or a sub-share that does not match the commitment.

Pure functions; randomness comes in as arguments; nothing logs; no error carries a secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from coffer.invariant import invariant
from coffer.mpc.dkg.errors import (
    DuplicateHostPubkeyError,
    FaultyParticipantError,
    InvalidArgument,
    InvalidDealing,
    InvalidHostPubkeyError,
    RandomnessError,
)
from coffer.mpc.dkg.messages import decode_elements, decode_scalars, encode_elements, encode_scalars
from coffer.mpc.dkg.suite import SCALAR_LENGTH, SIGNATURE_LENGTH, DkgSuite
from coffer.mpc.dkg.vss import commitment_eval, polynomial_eval
from coffer.mpc.errors import DuplicateIdentifier, InvalidIdentifier, MalformedInput
from coffer.mpc.hazmat.group import Element

__all__ = ["Holder", "Dealing", "DealingPlan", "IDENTIFIER_MAX", "validate_holders", "deal",
           "open_dealing", "receive_sub_share", "collect_dealings", "transcript_digest",
           "ack_sign", "acks_verify"]

IDENTIFIER_MAX = 2**32 - 1


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


@dataclass(frozen=True, slots=True)
class Holder:
    """A party: its Shamir identifier and its long-term host public key (ChillDKG host key)."""

    identifier: int
    hostpubkey: bytes


def validate_holders(suite: DkgSuite, holders: Sequence[Holder]) -> None:
    """Identifiers in [1, 2^32-1] and unique, host keys valid and unique."""
    seen_ids: set[int] = set()
    seen_keys: dict[bytes, int] = {}
    for holder in holders:
        if not 1 <= holder.identifier <= IDENTIFIER_MAX:
            raise InvalidIdentifier(f"identifier {holder.identifier} out of range")
        if holder.identifier in seen_ids:
            raise DuplicateIdentifier("identifier appears twice", identifier=holder.identifier)
        seen_ids.add(holder.identifier)
        try:
            suite.decode_point(holder.hostpubkey)
        except MalformedInput:
            raise InvalidHostPubkeyError(culprit=holder.identifier) from None
        if holder.hostpubkey in seen_keys:
            raise DuplicateHostPubkeyError(seen_keys[holder.hostpubkey], holder.identifier)
        seen_keys[holder.hostpubkey] = holder.identifier


@dataclass(frozen=True, slots=True)
class DealingPlan:
    """What every party agrees on before dealing: who deals what to whom, under which digest."""

    kind: str
    digest: bytes
    threshold: int
    dealers: tuple[Holder, ...]
    recipients: tuple[Holder, ...]
    expected_constants: dict[int, Element]

    def dealer(self, identifier: int) -> Holder:
        for holder in self.dealers:
            if holder.identifier == identifier:
                return holder
        raise InvalidIdentifier(f"{identifier} is not a dealer of this session")


@dataclass(frozen=True, slots=True)
class Dealing:
    dealer: int
    threshold: int
    commitment: tuple[Element, ...]
    pubnonce: bytes
    enc_shares: tuple[int, ...]
    signature: bytes


def _length(suite: DkgSuite, plan: DealingPlan) -> int:
    return (8 + suite.element_length * (plan.threshold + 1) + SCALAR_LENGTH * len(plan.recipients)
            + SIGNATURE_LENGTH)


def _signed_message(suite: DkgSuite, plan: DealingPlan, body: bytes) -> bytes:
    return suite.tagged_hash(plan.kind + " dealing", plan.digest + body)


def _pad(suite: DkgSuite, plan: DealingPlan, shared: bytes, pubnonce: bytes, recipient: Holder) -> int:
    return suite.scalar_from_hash_wrapping(
        plan.kind + " ecdh",
        shared + pubnonce + recipient.hostpubkey + _u32(recipient.identifier) + plan.digest)


def deal(suite: DkgSuite, plan: DealingPlan, hostseckey: bytes, dealer: int, constant: int,
         random: bytes) -> bytes:
    """Deal `constant` to the plan's recipients: commitment, encrypted sub-shares, signature."""
    hostseckey = bytes(hostseckey)
    holder = plan.dealer(dealer)
    if suite.pubkey_gen(hostseckey) != holder.hostpubkey:
        raise InvalidArgument("host secret key does not match the dealer's host public key")
    if len(random) != 32:
        raise InvalidArgument("random must be 32 bytes")
    if bytes(random) == bytes(32):
        raise RandomnessError("randomness is all zeroes")
    seed = suite.tagged_hash(plan.kind + " seed", hostseckey + bytes(random) + plan.digest)
    coefficients = [constant % suite.order] + [
        suite.scalar_from_hash_checked(plan.kind + " coeffs", seed + _u32(j)) for j in range(1, plan.threshold)]
    secnonce = suite.scalar_from_hash_checked(plan.kind + " secnonce", seed)
    invariant(secnonce != 0, "zero encryption nonce")
    pubnonce = suite.encode(suite.base_mul(secnonce))
    enc_shares = []
    for recipient in plan.recipients:
        share = polynomial_eval(coefficients, recipient.identifier, suite.order)
        shared = suite.ecdh(secnonce, recipient.hostpubkey)
        enc_shares.append((share + _pad(suite, plan, shared, pubnonce, recipient)) % suite.order)
    commitment = tuple(suite.base_mul(coefficient) for coefficient in coefficients)
    body = (_u32(dealer) + _u32(plan.threshold) + encode_elements(suite, commitment) + pubnonce
            + encode_scalars(suite, enc_shares))
    aux = suite.tagged_hash(plan.kind + " aux", seed)
    signature = suite.sign(_signed_message(suite, plan, body), suite.host_secret_scalar(hostseckey), aux,
                           suite.host_signature_tag)
    return body + signature


def open_dealing(suite: DkgSuite, plan: DealingPlan, dealer: int, data: bytes) -> Dealing:
    """Parse and check everything public about one dealing; every failure names `dealer`."""
    holder = plan.dealer(dealer)
    data = bytes(data)
    if len(data) != _length(suite, plan):
        raise InvalidDealing("dealing has the wrong length", culprit=dealer)
    body, signature = data[:-SIGNATURE_LENGTH], data[-SIGNATURE_LENGTH:]
    if not suite.verify(_signed_message(suite, plan, body), suite.decode_point(holder.hostpubkey),
                        signature, suite.host_signature_tag):
        raise InvalidDealing("dealing signature does not verify", culprit=dealer)
    if int.from_bytes(body[:4], "big") != dealer or int.from_bytes(body[4:8], "big") != plan.threshold:
        raise InvalidDealing("dealing names another dealer or threshold", culprit=dealer)
    size = suite.element_length
    rest = body[8:]
    try:
        commitment = decode_elements(suite, rest[:size * plan.threshold], plan.threshold)
        pubnonce = rest[size * plan.threshold:size * (plan.threshold + 1)]
        suite.decode_point(pubnonce)
        enc_shares = decode_scalars(suite, rest[size * (plan.threshold + 1):], len(plan.recipients))
    except MalformedInput as error:
        raise InvalidDealing(f"malformed dealing: {error}", culprit=dealer) from None
    if commitment[0] != plan.expected_constants[dealer]:
        raise InvalidDealing("wrong constant commitment", culprit=dealer)
    return Dealing(dealer, plan.threshold, commitment, pubnonce, enc_shares, signature)


def receive_sub_share(suite: DkgSuite, plan: DealingPlan, dealing: Dealing, hostseckey: bytes,
                      recipient: int) -> int:
    """Decrypt this recipient's sub-share of an opened dealing and check it against the commitment."""
    position = [holder.identifier for holder in plan.recipients].index(recipient)
    holder = plan.recipients[position]
    shared = suite.ecdh(suite.host_secret_scalar(bytes(hostseckey)), dealing.pubnonce)
    share = (dealing.enc_shares[position] - _pad(suite, plan, shared, dealing.pubnonce, holder)) % suite.order
    if suite.base_mul(share) != commitment_eval(suite, dealing.commitment, recipient):
        raise InvalidDealing("sub-share does not match the commitment", culprit=dealing.dealer)
    return share


def collect_dealings(suite: DkgSuite, plan: DealingPlan, dealings: Mapping[int, bytes]) -> list[Dealing]:
    """Open the dealing of every dealer of the plan, in dealer order; a missing one is blamed."""
    unknown = set(dealings) - {holder.identifier for holder in plan.dealers}
    if unknown:
        raise InvalidArgument(f"dealings from non-dealers {sorted(unknown)}")
    opened = []
    for holder in plan.dealers:
        if holder.identifier not in dealings:
            raise FaultyParticipantError("no dealing received", culprit=holder.identifier)
        opened.append(open_dealing(suite, plan, holder.identifier, dealings[holder.identifier]))
    return opened


def transcript_digest(suite: DkgSuite, plan: DealingPlan, dealings: Mapping[int, bytes]) -> bytes:
    """What every recipient signs once it accepted its share: the session and all dealings."""
    body = b"".join(_u32(holder.identifier) + bytes(dealings[holder.identifier]) for holder in plan.dealers)
    return suite.tagged_hash(plan.kind + " transcript", plan.digest + body)


def ack_sign(suite: DkgSuite, hostseckey: bytes, digest: bytes, aux_rand: bytes) -> bytes:
    """A recipient's acknowledgment of the transcript (CertEq for refresh and re-share)."""
    if len(aux_rand) != 32:
        raise InvalidArgument("aux_rand must be 32 bytes")
    message = suite.tagged_hash("transcript ack", digest)
    return suite.sign(message, suite.host_secret_scalar(bytes(hostseckey)), bytes(aux_rand),
                      suite.host_signature_tag)


def acks_verify(suite: DkgSuite, recipients: Sequence[Holder], digest: bytes,
                acks: Mapping[int, bytes]) -> None:
    """Raise FaultyParticipantError naming the first recipient without a valid acknowledgment."""
    message = suite.tagged_hash("transcript ack", digest)
    for holder in recipients:
        ack = acks.get(holder.identifier)
        if ack is None or not suite.verify(message, suite.decode_point(holder.hostpubkey), bytes(ack),
                                           suite.host_signature_tag):
            raise FaultyParticipantError("missing or invalid transcript acknowledgment",
                                         culprit=holder.identifier)
