"""Files in the formats of BitMEX's public proof-of-reserves-liabilities tools.

Writers turn Coffer's tree and reserves document into `validate_liabilities.py`'s tree file and
`validate_reserves.py`'s YAML. The readers here are written from the format description, not
from the writers, so a round trip checks one against the other:

Liabilities: first line `block_height:<n>`; then one line `<64 hex digest>,<value>` per node,
root first, then each lower level left to right; the leaf level has a power-of-two length.
(The reader is `coffer.por.verify.parse_liabilities_file`.)

Reserves YAML: `height`, `chain` (bitcoind's chain name), `claim: {m, n}`, `keys` (uncompressed
public keys), `xpub` (strings one of which appears in each key descriptor), `address`: a list of
`{addr_type, addr, script, balance}` where `script` is a descriptor for `wpkh`/`multisig_*`
types, optional `custodial`, and `total` = the sum of the balances, in satoshis.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from coffer.por.errors import BitmexFormatError
from coffer.por.liabilities import LiabilityTree

__all__ = ["write_liabilities_file", "reserves_yaml", "options_from_document", "BitmexAddress", "BitmexReserves", "read_reserves_yaml"]


def write_liabilities_file(tree: LiabilityTree, path: Path) -> None:
    with path.open("w", encoding="ascii", newline="\n") as out:
        for line in tree.bitmex_lines():
            out.write(line + "\n")


def _addr_type(descriptor: str) -> str:
    if descriptor.startswith("wpkh("):
        return "wpkh"
    if descriptor.startswith(("wsh(", "tr(", "sh(")):
        return "multisig_" + descriptor.split("(", 1)[0]
    raise BitmexFormatError(f"no BitMEX address type for descriptor {descriptor!r}")


def reserves_yaml(document: Mapping[str, Any], *, threshold: int, signer_count: int,
                  uncompressed_keys: Sequence[str] = (), key_strings: Sequence[str] = ()) -> str:
    """The YAML `validate_reserves.py` reads. Every entry needs a key descriptor (not `addr(...)`)
    containing one of `key_strings` (xpubs, or a Taproot key in hex)."""
    if document["asset"] != "BTC":
        raise BitmexFormatError("BitMEX's reserves format is for bitcoin only")
    addresses = []
    for entry in document["entries"]:
        descriptor = entry["descriptor"]
        if not any(key in descriptor for key in key_strings):
            raise BitmexFormatError(f"{entry['address']}: descriptor names none of the published keys")
        if "*" in descriptor:
            raise BitmexFormatError(f"{entry['address']}: a ranged descriptor; each address needs its own")
        addresses.append({"addr_type": _addr_type(descriptor), "addr": entry["address"], "script": descriptor,
                          "balance": entry["balance"]})
    _refuse_duplicates(addresses)
    data = {"height": document["height"], "chain": document["chain"], "claim": {"m": threshold, "n": signer_count},
            "keys": list(uncompressed_keys), "xpub": list(key_strings), "address": addresses,
            "total": document["total"]}
    return str(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def _refuse_duplicates(addresses: Sequence[Mapping[str, Any]]) -> None:
    """BitMEX's validator refuses an address or a script (descriptor) listed twice: it would count the same
    coins twice. Unspendable entries may share a script."""
    for field, items in (("address", [a["addr"] for a in addresses]),
                         ("script", [a["script"] for a in addresses if a["addr_type"] != "unspendable"])):
        repeated = sorted(item for item, count in Counter(items).items() if count > 1)
        if repeated:
            raise BitmexFormatError(f"{field} listed twice: {repeated[0]}")


@dataclass(frozen=True, slots=True)
class BitmexAddress:
    addr_type: str
    addr: str
    script: str
    balance: int


@dataclass(frozen=True, slots=True)
class BitmexReserves:
    height: int
    chain: str
    threshold: int
    signer_count: int
    keys: tuple[str, ...]
    xpubs: tuple[str, ...]
    addresses: tuple[BitmexAddress, ...]
    custodial: tuple[BitmexAddress, ...]
    total: int


_TOP = {"height", "chain", "claim", "keys", "xpub", "address", "custodial", "total"}
_REQUIRED = {"height", "chain", "claim", "keys", "address", "total"}
_ADDRESS_TYPES = ("sh", "sh_wsh", "wsh", "wpkh", "unspendable")


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BitmexFormatError(f"{what} must be a non-negative integer")
    return value


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BitmexFormatError(f"{what} must be a list of strings")
    return tuple(value)


def _addresses(items: Any, what: str, *, custodial: bool) -> Iterable[BitmexAddress]:
    if not isinstance(items, list):
        raise BitmexFormatError(f"{what} must be a list")
    for number, item in enumerate(items):
        keys = {"addr_type", "addr", "balance"} | (set() if custodial else {"script"})
        if not isinstance(item, dict) or set(item) - {"script"} != keys - {"script"} or not keys <= set(item):
            raise BitmexFormatError(f"{what}[{number}] must have exactly {sorted(keys)}")
        addr_type = item["addr_type"]
        if not custodial and addr_type not in _ADDRESS_TYPES and not str(addr_type).startswith("multisig_"):
            raise BitmexFormatError(f"{what}[{number}]: unknown addr_type {addr_type!r}")
        yield BitmexAddress(str(addr_type), str(item["addr"]), str(item.get("script", "")),
                            _int(item["balance"], f"{what}[{number}].balance"))


def read_reserves_yaml(text: str) -> BitmexReserves:
    """Strict reader of the reserves YAML: known keys only, integer balances, a matching total."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BitmexFormatError(f"not YAML: {exc}") from None
    if not isinstance(data, dict) or not _REQUIRED <= set(data) or not set(data) <= _TOP:
        raise BitmexFormatError(f"top-level keys must be {sorted(_REQUIRED)} (plus xpub, custodial)")
    claim = data["claim"]
    if not isinstance(claim, dict) or set(claim) != {"m", "n"}:
        raise BitmexFormatError("claim must be {m, n}")
    addresses = tuple(_addresses(data["address"], "address", custodial=False))
    custodial = tuple(_addresses(data.get("custodial", []), "custodial", custodial=True))
    total = _int(data["total"], "total")
    if sum(a.balance for a in addresses + custodial) != total:
        raise BitmexFormatError("total is not the sum of the balances")
    _refuse_duplicates([{"addr": a.addr, "script": a.script, "addr_type": a.addr_type} for a in addresses])
    return BitmexReserves(_int(data["height"], "height"), str(data["chain"]), _int(claim["m"], "claim.m"),
                          _int(claim["n"], "claim.n"), _strings(data["keys"], "keys"),
                          _strings(data.get("xpub", []), "xpub"), addresses, custodial, total)


_MULTI = re.compile(r"(?:sorted)?multi\((\d+),([^()]*)\)")
_SINGLE = re.compile(r"^(?:tr|wpkh)\(([^(),]+)\)$")


def _key_of(expression: str) -> str:
    """The key itself from a descriptor key expression: drop `[origin]` and `/path` suffixes."""
    key = expression.strip()
    if key.startswith("["):
        key = key[key.index("]") + 1:]
    return key.split("/", 1)[0]


def options_from_document(document: Mapping[str, Any]) -> tuple[int, int, tuple[str, ...]]:
    """(m, n, key strings) for the YAML, read from the entries' key descriptors."""
    threshold, signer_count, keys = 0, 0, []
    for entry in document["entries"]:
        descriptor = entry["descriptor"]
        multi, single = _MULTI.search(descriptor), _SINGLE.match(descriptor)
        if multi is not None:
            members = [_key_of(item) for item in multi.group(2).split(",")]
            threshold, signer_count = int(multi.group(1)), len(members)
            keys += members
        elif single is not None:
            keys.append(_key_of(single.group(1)))
        else:
            raise BitmexFormatError(f"{entry['address']}: no key descriptor to publish in BitMEX's format")
    return threshold, signer_count, tuple(dict.fromkeys(keys))
