"""Conversions between DKG outputs and FROST key packages (`coffer.mpc.frost.keys`).

A DKG, refresh or re-share ends in a `KeyShareOutput`; FROST signs with a `KeyPackage`, whose
`to_bytes` is what a co-signer encrypts under its HSM key and stores. A refresh or re-share
starts from that stored package again. Both directions check the material (FROST's packages
verify that every public share lies on one polynomial through the group key).
"""

from __future__ import annotations

from coffer.mpc.dkg.errors import InvalidArgument
from coffer.mpc.dkg.types import KeyShareOutput, SecretShare
from coffer.mpc.frost.keys import KeyPackage, PublicKeyPackage, group_by_name

__all__ = ["to_public_key_package", "to_key_package", "from_key_package"]


def to_public_key_package(output: KeyShareOutput) -> PublicKeyPackage:
    """The FROST public package (threshold, group key, verifying shares) of a DKG output."""
    return PublicKeyPackage.from_encoded(group_by_name(output.suite), output.threshold,
                                         output.group_public_key, output.public_shares)


def to_key_package(output: KeyShareOutput) -> KeyPackage:
    """This participant's FROST key package; the output must carry a secret share."""
    if output.secret_share is None:
        raise InvalidArgument("this output has no secret share")
    return KeyPackage(output.secret_share.identifier, output.secret_share.value, to_public_key_package(output))


def from_key_package(package: KeyPackage) -> KeyShareOutput:
    """A stored FROST key package as a DKG output (the input of a refresh or re-share)."""
    group = package.public.group
    public_shares = {identifier: group.serialize_element(package.public.verifying_share(identifier))
                     for identifier in package.public.identifiers}
    return KeyShareOutput(group.name, package.public.min_signers,
                          group.serialize_element(package.public.group_public_key), public_shares,
                          SecretShare(package.identifier, package.secret_share))
