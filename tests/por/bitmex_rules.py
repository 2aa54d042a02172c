"""Every rule BitMEX's `validate_reserves.py` applies to a reserves file, checked our own way against a node.

Written from the tool's documented behaviour (github.com/BitMEX/proof-of-reserves-liabilities), not
from its code: the file's rules (no address or script twice, an `xpub` of the set inside every
`wpkh`/`multisig_*` descriptor, claims summing to `total`), then the node's: same chain, the node at
or past the claimed height, the block at that height on the best chain, the node taken back to it
(`invalidateblock` of each next block, as the tool does) and `scantxoutset` over the descriptors
reporting that block as its best block. Stricter than the tool, which only warns on a chunk whose
sum differs: every address's balance must equal what `scantxoutset` finds for its own descriptor.
The node is brought back to its tip afterwards (`reconsiderblock`).
"""

from __future__ import annotations

import json
import urllib.request
from base64 import b64encode
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import yaml

SATS_PER_BTC = 100_000_000
RPC_TIMEOUT_S = 60.0
REWIND_BLOCKS_MAX = 1_000


class RuleBroken(Exception):
    """A rule of BitMEX's validator that the file or the node's answers break; `rule` names it."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule


@dataclass(frozen=True, slots=True)
class Checked:
    height: int
    block_hash: str
    claimed_sats: int
    proven_sats: int
    balances: Mapping[str, int]


Rpc = Callable[[str, list[Any]], Any]


def rpc_2_0(url: str) -> Rpc:
    """JSON-RPC 2.0 as the tool speaks it; a reply's `error` may be absent on success (Core 28+)."""
    parts = urlsplit(url)
    endpoint = f"http://{parts.hostname}:{parts.port}/"
    token = b64encode(f"{parts.username}:{parts.password}".encode()).decode()

    def call(method: str, params: list[Any]) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 0, "method": method, "params": params}).encode()
        request = urllib.request.Request(endpoint, data=body, method="POST",  # noqa: S310
                                         headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"})
        with urllib.request.urlopen(request, timeout=RPC_TIMEOUT_S) as response:  # noqa: S310
            reply = json.loads(response.read(), parse_float=Decimal)
        if reply.get("error") is not None:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    return call


def check_file(data: Mapping[str, Any]) -> list[tuple[str, int, str]]:
    """The file's own rules; returns (descriptor, claimed sats, address) per owned entry."""
    entries = data["address"]
    for field, values in (("duplicate_address", [e["addr"] for e in entries]),
                          ("duplicate_script", [e["script"] for e in entries if e["addr_type"] != "unspendable"])):
        repeated = [value for value, count in Counter(values).items() if count > 1]
        if repeated:
            raise RuleBroken(field, repeated[0])
    owned, unspendable = [], 0
    for entry in entries:
        kind = entry["addr_type"]
        if kind == "unspendable":
            unspendable += int(entry["balance"])
            continue
        if kind != "wpkh" and not kind.startswith("multisig_"):
            # sh/sh_wsh/wsh carry raw scripts in BitMEX's own 3-founder-keys-plus-one layout; Coffer never emits them
            raise RuleBroken("addr_type", f"{entry['addr']}: {kind} is not a descriptor type")
        if not any(key in entry["script"] for key in data.get("xpub", [])):
            raise RuleBroken("xpub_missing", f"{entry['addr']}: none of the xpubs is in {entry['script']}")
        owned.append((entry["script"], int(entry["balance"]), entry["addr"]))
    custodial = [(f"addr({e['addr']})", int(e["balance"]), e["addr"]) for e in data.get("custodial", [])]
    if sum(item[1] for item in owned + custodial) + unspendable != data["total"]:
        raise RuleBroken("total", "the claims do not sum to the file's total")
    return owned + custodial


@contextmanager
def rewound_to(rpc: Rpc, height: int) -> Iterator[str]:
    """The node taken back to the block at `height` (each next block invalidated), then forward again."""
    block_hash = rpc("getblockhash", [height])
    invalidated: list[str] = []
    try:
        for _ in range(REWIND_BLOCKS_MAX):
            block = rpc("getblock", [block_hash])
            if block["confirmations"] < 1:
                raise RuleBroken("best_chain", f"block {block_hash} is not on the best chain")
            if "nextblockhash" not in block:
                break
            rpc("invalidateblock", [block["nextblockhash"]])
            invalidated.append(block["nextblockhash"])
        else:
            raise RuleBroken("best_chain", f"still not at {block_hash} after {REWIND_BLOCKS_MAX} invalidations")
        yield block_hash
    finally:
        for rewound in reversed(invalidated):
            rpc("reconsiderblock", [rewound])


def _scan(rpc: Rpc, descriptors: list[str], block_hash: str) -> int:
    result = rpc("scantxoutset", ["start", descriptors])
    if not result["success"]:
        raise RuleBroken("scan", "scantxoutset did not succeed")
    if result["bestblock"] != block_hash:
        raise RuleBroken("tip_moved", f"scanned at {result['bestblock']}, not {block_hash}")
    return int(Decimal(result["total_amount"]) * SATS_PER_BTC)


def check_reserves(text: str, rpc: Rpc) -> Checked:
    """Every rule, file and node; raises RuleBroken naming the first rule broken."""
    data = yaml.safe_load(text)
    claims = check_file(data)
    chain = rpc("getblockchaininfo", [])["chain"]
    if chain != data["chain"]:
        raise RuleBroken("chain", f"node on {chain}, file for {data['chain']}")
    if rpc("getblockcount", []) < data["height"]:
        raise RuleBroken("height", f"node behind the claimed height {data['height']}")
    balances: dict[str, int] = {}
    with rewound_to(rpc, data["height"]) as block_hash:
        proven = _scan(rpc, [descriptor for descriptor, _claimed, _address in claims], block_hash)
        for descriptor, claimed, address in claims:
            balances[address] = _scan(rpc, [descriptor], block_hash)
            if balances[address] != claimed:
                raise RuleBroken("balance", f"{address}: claimed {claimed}, the node finds {balances[address]}")
    claimed_sats = sum(item[1] for item in claims)
    if proven < claimed_sats:
        raise RuleBroken("proven", f"claimed {claimed_sats}, proven {proven}")
    return Checked(data["height"], block_hash, claimed_sats, proven, balances)
