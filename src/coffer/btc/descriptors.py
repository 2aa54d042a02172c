"""BIP-380 descriptor checksums (embit's), added and checked strictly."""

from __future__ import annotations

from embit.descriptor.checksum import checksum as embit_checksum

from coffer.btc.errors import DescriptorChecksumError

__all__ = ["descriptor_checksum", "add_checksum", "strip_checksum"]


def descriptor_checksum(body: str) -> str:
    """The 8-character checksum of a descriptor without its '#'."""
    try:
        return str(embit_checksum(body))
    except Exception:  # embit raises bare ValueError/KeyError/DescriptorError on bad characters
        raise DescriptorChecksumError(f"Invalid descriptor: {body!r}") from None


def add_checksum(descriptor: str) -> str:
    """`body#checksum`, replacing any checksum `descriptor` carried."""
    body = descriptor.partition("#")[0]
    return f"{body}#{descriptor_checksum(body)}"


def strip_checksum(descriptor: str, *, required: bool) -> str:
    """The body of `descriptor`; a checksum present must be right, and must be present if required."""
    body, sep, given = descriptor.partition("#")
    if not sep:
        if required:
            raise DescriptorChecksumError("descriptor has no checksum")
        return body
    expected = descriptor_checksum(body)
    if given != expected:
        raise DescriptorChecksumError(
            f"Provided checksum '{given}' does not match computed checksum '{expected}'")
    return body
