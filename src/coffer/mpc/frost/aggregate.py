"""FROST aggregation (RFC 9591 §5.3) and signature-share verification (§5.4).

The aggregator sums the shares and verifies the result before releasing it. If the signature does
not verify, every share is checked on its own and the senders of the bad ones are named in
`InvalidSignatureShare(culprits=...)` (identifiable abort). A missing or unexpected share, or one
whose sender is not in the signer set, is refused before any arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping

from coffer.invariant import invariant
from coffer.mpc.errors import InsufficientSigners, InvalidIdentifier, InvalidSignature, InvalidSignatureShare
from coffer.mpc.frost.ciphersuite import Ciphersuite, SessionValues
from coffer.mpc.frost.keys import PublicKeyPackage, check_group, check_signer_set, lagrange_coefficient
from coffer.mpc.frost.round1 import SigningCommitments
from coffer.mpc.frost.round2 import SignatureShare, SigningPackage
from coffer.mpc.hazmat.group import Element

__all__ = ["aggregate", "aggregate_with_session", "verify_signature_share", "verify_share_with_session"]


def verify_share_with_session(suite: Ciphersuite, session: SessionValues, commitment: SigningCommitments,
                              verifying_share: Element, share: SignatureShare) -> bool:
    """z_i * G == nonce_factor * (D_i + rho_i * E_i) + (c * lambda_i * key_factor) * Y_i."""
    group = suite.group
    identifier = share.identifier
    invariant(commitment.identifier == identifier, "commitment and share of different signers")
    if identifier not in session.identifiers:
        return False
    if not 0 <= share.value < group.order:
        return False
    lagrange = lagrange_coefficient(group, session.identifiers, identifier)
    nonce_commitment = group.add(
        commitment.hiding, group.mul(commitment.binding, session.binding_factors[identifier]))
    if session.nonce_factor != 1:
        nonce_commitment = group.neg(nonce_commitment)
    key_scalar = session.challenge * lagrange * session.key_factor % group.order
    expected = group.add(nonce_commitment, group.mul(verifying_share, key_scalar))
    return group.base_mul(share.value) == expected


def verify_signature_share(suite: Ciphersuite, public: PublicKeyPackage, signing_package: SigningPackage,
                           share: SignatureShare) -> None:
    """Raise InvalidSignatureShare(culprits=(share.identifier,)) unless the share is valid."""
    check_group(public.group, suite.group)
    check_signer_set(signing_package.identifiers, public)
    if share.identifier not in signing_package.identifiers:
        raise InvalidSignatureShare("share from a participant outside the signer set",
                                    culprits=(share.identifier,))
    session = suite.session(public, signing_package.commitments, signing_package.message,
                            signing_package.tweaks)
    commitment = signing_package.commitment(share.identifier)
    verifying_share = public.verifying_share(share.identifier)
    if not verify_share_with_session(suite, session, commitment, verifying_share, share):
        raise InvalidSignatureShare(culprits=(share.identifier,))


def aggregate_with_session(suite: Ciphersuite, session: SessionValues,
                           shares: Mapping[int, SignatureShare]) -> bytes:
    """Sum the shares (plus the Taproot tweak term) and encode the signature; no verification."""
    group = suite.group
    if set(shares) != set(session.identifiers):
        missing = sorted(set(session.identifiers) - set(shares))
        extra = sorted(set(shares) - set(session.identifiers))
        if extra:
            raise InvalidIdentifier(f"signature shares from participants outside the signer set: {extra}")
        raise InsufficientSigners(f"missing signature shares from {missing}")
    response = session.tweak_term
    for identifier, share in shares.items():
        invariant(share.identifier == identifier, "share filed under the wrong identifier")
        if not 0 <= share.value < group.order:
            raise InvalidSignatureShare("signature share out of range", culprits=(identifier,))
        response += share.value
    return suite.encode_signature(session.group_commitment, response % group.order)


def aggregate(suite: Ciphersuite, public: PublicKeyPackage, signing_package: SigningPackage,
              shares: Mapping[int, SignatureShare]) -> bytes:
    """Combine the signers' shares into a signature that verifies under the (tweaked) group key.

    Raises InvalidSignatureShare naming every signer whose share is wrong.
    """
    check_group(public.group, suite.group)
    check_signer_set(signing_package.identifiers, public)
    session = suite.session(public, signing_package.commitments, signing_package.message,
                            signing_package.tweaks)
    signature = aggregate_with_session(suite, session, shares)
    try:
        suite.verify(session.signing_key, signing_package.message, signature)
    except InvalidSignature:
        culprits = [
            identifier for identifier in session.identifiers
            if not verify_share_with_session(suite, session, signing_package.commitment(identifier),
                                             public.verifying_share(identifier), shares[identifier])]
        # Every share valid but the sum invalid is impossible for a checked public package.
        invariant(culprits, "all signature shares verify but the signature does not")
        raise InvalidSignatureShare(culprits=culprits) from None
    return signature
