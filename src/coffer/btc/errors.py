"""Errors of the Bitcoin helpers. Callers in other parts translate them into their own types."""

from __future__ import annotations

from coffer.errors import CofferError

__all__ = ["BtcError", "MalformedBytes", "InvalidTweak", "DescriptorChecksumError", "InvalidAddress",
           "InvalidScript", "Bip322Invalid", "Bip322Unsupported"]


class BtcError(CofferError):
    """Root of the Bitcoin helpers' errors."""


class MalformedBytes(BtcError):
    """A byte string is truncated, has trailing bytes or a non-canonical length prefix."""


class InvalidTweak(BtcError):
    """A Taproot tweak is out of range or gives the point at infinity."""


class DescriptorChecksumError(BtcError):
    """A descriptor's `#checksum` is missing where required, or wrong."""


class InvalidAddress(BtcError):
    """An address does not parse, or is for another network."""


class InvalidScript(BtcError):
    """A script is not of the template asked for."""


class Bip322Invalid(BtcError):
    """A BIP-322 signature is malformed or does not verify; the message is the published reason."""


class Bip322Unsupported(Bip322Invalid):
    """A BIP-322 signature for a script type Coffer does not evaluate."""
