"""Output descriptors to scriptPubKeys (embit for parsing and derivation; checksums by `coffer.btc`).

Supports what scantxoutset and the chain interface need: every descriptor embit parses, plus
`addr(...)` and `raw(...)`, ranged (`/*`) descriptors over an inclusive index range, and an
optional `#checksum` which, when present, must be right.
"""

from __future__ import annotations

from embit import script as embit_script
from embit.descriptor import Descriptor
from embit.networks import NETWORKS

from coffer.btc import descriptors as btc_descriptors
from coffer.btc.descriptors import add_checksum
from coffer.btc.errors import BtcError
from coffer.chain.errors import DecodeError

__all__ = ["descriptor_scripts", "descriptor_normal_form", "is_ranged", "strip_checksum", "add_checksum", "address_to_script",
           "script_to_address", "DESCRIPTOR_RANGE_MAX", "REGTEST"]

DESCRIPTOR_RANGE_MAX = 1_000_000
REGTEST = NETWORKS["regtest"]


def strip_checksum(descriptor: str) -> str:
    """The body of `descriptor`; a checksum, when present, must be right (Bitcoin Core's messages)."""
    try:
        return btc_descriptors.strip_checksum(descriptor, required=False)
    except BtcError as exc:
        raise DecodeError(str(exc)) from None


def is_ranged(descriptor: str) -> bool:
    return "*" in strip_checksum(descriptor)


def address_to_script(address: str) -> bytes:
    """A regtest address (bcrt1…, m/n…, 2…) to its scriptPubKey; DecodeError when invalid."""
    try:
        spk = embit_script.address_to_scriptpubkey(address)
        if address.lower().startswith("bc1") or address.lower().startswith("tb1"):
            raise DecodeError("not a regtest address")
        if address[0] in "13":
            raise DecodeError("not a regtest address")
        data: bytes = spk.data
        return data
    except DecodeError:
        raise
    except Exception as exc:  # embit raises several unrelated types for bad input
        raise DecodeError("Invalid address") from exc


def script_to_address(spk: bytes) -> str | None:
    try:
        address: str = embit_script.Script(spk).address(REGTEST)
        return address
    except Exception:  # no address form for this script
        return None


def descriptor_normal_form(descriptor: str) -> str:
    """The descriptor as embit writes it back (without checksum); DecodeError when it does not parse."""
    body = strip_checksum(descriptor.strip())
    if body.startswith(("addr(", "raw(")):
        return body
    try:
        text: str = Descriptor.from_string(body).to_string()
    except Exception as exc:  # embit raises several types for malformed descriptors
        raise DecodeError(f"Invalid descriptor: {exc}") from exc
    return text.partition("#")[0]


def descriptor_scripts(descriptor: str, range_start: int = 0, range_end: int = 999) -> list[tuple[bytes, str]]:
    """(scriptPubKey, derived descriptor) for each index of a ranged descriptor, or the one script."""
    body = strip_checksum(descriptor.strip())
    if body.startswith("addr(") and body.endswith(")"):
        return [(address_to_script(body[5:-1]), add_checksum(body))]
    if body.startswith("raw(") and body.endswith(")"):
        try:
            return [(bytes.fromhex(body[4:-1]), add_checksum(body))]
        except ValueError as exc:
            raise DecodeError("raw() needs hex") from exc
    try:
        parsed = Descriptor.from_string(body)
    except Exception as exc:  # embit raises several types for malformed descriptors
        raise DecodeError(f"Invalid descriptor: {exc}") from exc
    if not parsed.is_wildcard:
        # derive() applies a fixed path such as `xpub/0/7`; embit's script_pubkey() alone ignores it
        return [(parsed.derive(0).script_pubkey().data, add_checksum(body))]
    if not 0 <= range_start <= range_end or range_end - range_start >= DESCRIPTOR_RANGE_MAX:
        raise DecodeError("Range should be greater or equal than 0 and at most 1000000 items")
    found = []
    for index in range(range_start, range_end + 1):
        derived = parsed.derive(index)
        found.append((derived.script_pubkey().data, add_checksum(derived.to_string())))
    return found
