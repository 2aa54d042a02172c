"""Bitcoin Core over JSON-RPC: the production BitcoinChain.

`BitcoinCoreRpc` is a small JSON-RPC client (HTTP Basic auth, cookie or user/password, batch
calls, amounts parsed as Decimal and turned into integer satoshis exactly). `BitcoinRpcChain`
implements the chain interface on it. Works the same against bitcoind and `coffer regtest`.
Never logs credentials.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from coffer.chain.errors import (
    BlockNotFound,
    BroadcastRejected,
    ChainUnavailable,
    RpcError,
    TransactionNotFound,
)
from coffer.chain.interface import BlockInfo, BlockRef, DescriptorRange, FeeEstimate, TxStatus, Utxo

__all__ = ["BitcoinCoreRpc", "BitcoinRpcChain", "btc_to_sats", "RPC_TIMEOUT_S", "RESPONSE_BYTES_MAX"]

RPC_TIMEOUT_S = 30.0
RESPONSE_BYTES_MAX = 64 * 1024 * 1024
FALLBACK_FEE_SAT_PER_KVB = 2000
_REJECT_CODES = (-25, -26, -27, -22)


def btc_to_sats(value: object) -> int:
    amount = Decimal(str(value)) * 100_000_000
    if amount != amount.to_integral_value():
        raise ChainUnavailable(f"amount with more than 8 decimals: {value}")
    return int(amount)


class BitcoinCoreRpc:
    """A thread-safe JSON-RPC client for bitcoind-compatible nodes."""

    def __init__(self, url: str, *, user: str | None = None, password: str | None = None,
                 cookie_file: Path | None = None, timeout_s: float = RPC_TIMEOUT_S) -> None:
        self._cookie_file = cookie_file
        if cookie_file is not None:
            user, password = self._read_cookie(cookie_file)
        if user is None or password is None:
            raise ValueError("give user and password, or a cookie file")
        self.url = url
        self._client = httpx.Client(auth=(user, password), timeout=timeout_s,
                                    headers={"Content-Type": "application/json"})
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @staticmethod
    def _read_cookie(path: Path) -> tuple[str, str]:
        try:
            user, _sep, password = path.read_text().strip().partition(":")
        except OSError as exc:
            raise ChainUnavailable(f"cannot read the RPC cookie file {path}") from exc
        return user, password

    def __repr__(self) -> str:
        return f"BitcoinCoreRpc({self.url!r})"

    def close(self) -> None:
        self._client.close()

    def _send(self, body: str) -> httpx.Response:
        try:
            return self._client.post(self.url, content=body)
        except httpx.HTTPError as exc:
            raise ChainUnavailable(f"cannot reach {self.url}: {type(exc).__name__}") from exc

    def _post(self, payload: object) -> Any:
        body = json.dumps(payload)
        response = self._send(body)
        if response.status_code == 401 and self._cookie_file is not None:
            # The node restarted and wrote a new cookie: read it again, once.
            self._client.auth = httpx.BasicAuth(*self._read_cookie(self._cookie_file))
            response = self._send(body)
        if response.status_code == 401:
            raise ChainUnavailable("RPC authentication failed (401)")
        if len(response.content) > RESPONSE_BYTES_MAX:
            raise ChainUnavailable("RPC response too large")
        try:
            return json.loads(response.content, parse_float=Decimal)
        except ValueError as exc:
            raise ChainUnavailable(f"non-JSON reply with HTTP {response.status_code}") from exc

    def call(self, method: str, *params: object) -> Any:
        with self._lock:
            request_id = next(self._ids)
        reply = self._post({"jsonrpc": "1.0", "id": request_id, "method": method, "params": list(params)})
        if not isinstance(reply, dict):
            raise ChainUnavailable("RPC reply is not an object")
        error = reply.get("error")
        if error:
            raise RpcError(int(error.get("code", -1)), str(error.get("message", "")))
        return reply.get("result")

    def batch(self, calls: Sequence[tuple[str, Sequence[object]]]) -> list[Any]:
        """Several calls in one request; results in order; the first error raises."""
        if not calls:
            return []
        with self._lock:
            first = next(self._ids)
            for _ in range(len(calls) - 1):
                next(self._ids)
        payload = [{"jsonrpc": "1.0", "id": first + i, "method": m, "params": list(p)}
                   for i, (m, p) in enumerate(calls)]
        replies = self._post(payload)
        if not isinstance(replies, list):
            raise ChainUnavailable("batch reply is not an array")
        by_id = {reply.get("id"): reply for reply in replies if isinstance(reply, dict)}
        results = []
        for i in range(len(calls)):
            reply = by_id.get(first + i)
            if reply is None:
                raise ChainUnavailable("batch reply misses an answer")
            if reply.get("error"):
                raise RpcError(int(reply["error"].get("code", -1)), str(reply["error"].get("message", "")))
            results.append(reply.get("result"))
        return results


def _utxos_from_scan(result: dict[str, Any]) -> list[Utxo]:
    return [Utxo(item["txid"], int(item["vout"]), btc_to_sats(item["amount"]), bytes.fromhex(item["scriptPubKey"]),
                 int(item["height"]), bool(item.get("coinbase", False))) for item in result.get("unspents", [])]


class BitcoinRpcChain:
    """BitcoinChain over Bitcoin Core's JSON-RPC (bitcoind with -txindex for tx_status of old txs)."""

    def __init__(self, rpc: BitcoinCoreRpc, *, fallback_fee_sat_per_kvb: int = FALLBACK_FEE_SAT_PER_KVB) -> None:
        self.rpc = rpc
        self._fallback = fallback_fee_sat_per_kvb

    def close(self) -> None:
        self.rpc.close()

    def tip(self) -> BlockRef:
        info = self.rpc.call("getblockchaininfo")
        return BlockRef(int(info["blocks"]), str(info["bestblockhash"]))

    def block_hash(self, height: int) -> str:
        try:
            return str(self.rpc.call("getblockhash", height))
        except RpcError as exc:
            if exc.code == -8:
                raise BlockNotFound(f"no block at height {height}") from exc
            raise

    def _block_json(self, block_hash: str, verbosity: int) -> Any:
        try:
            return self.rpc.call("getblock", block_hash, verbosity)
        except RpcError as exc:
            if exc.code in (-5, -8):
                raise BlockNotFound(f"block {block_hash} not found") from exc
            raise

    def block(self, block_hash: str) -> BlockInfo:
        data = self._block_json(block_hash, 1)
        if int(data["confirmations"]) < 1:
            raise BlockNotFound(f"block {block_hash} is not on the active chain")
        return BlockInfo(str(data["hash"]), int(data["height"]), data.get("previousblockhash"), int(data["time"]),
                         int(data["mediantime"]), int(data["confirmations"]), tuple(data["tx"]))

    def raw_block(self, block_hash: str) -> bytes:
        return bytes.fromhex(self._block_json(block_hash, 0))

    def tx_status(self, txid: str) -> TxStatus:
        try:
            data = self.rpc.call("getrawtransaction", txid, 1)
        except RpcError as exc:
            if exc.code in (-5, -8):
                raise TransactionNotFound(f"transaction {txid} not found") from exc
            raise
        confirmations = int(data.get("confirmations", 0))
        if confirmations < 1:
            return TxStatus(txid, 0, None, None)
        header = self.rpc.call("getblockheader", data["blockhash"], True)
        return TxStatus(txid, confirmations, str(data["blockhash"]), int(header["height"]))

    def confirmations(self, txid: str) -> int:
        try:
            return self.tx_status(txid).confirmations
        except TransactionNotFound:
            return 0

    def unspent(self, script_pubkeys: Iterable[bytes]) -> list[Utxo]:
        objects = [f"raw({spk.hex()})" for spk in sorted(set(script_pubkeys))]
        if not objects:
            return []
        return _utxos_from_scan(self.rpc.call("scantxoutset", "start", objects))

    def unspent_for_descriptors(self, descriptors: Sequence[DescriptorRange]) -> list[Utxo]:
        objects = [{"desc": d.descriptor, "range": [d.range_start, d.range_end]} for d in descriptors]
        if not objects:
            return []
        return _utxos_from_scan(self.rpc.call("scantxoutset", "start", objects))

    def broadcast(self, raw_tx: bytes) -> str:
        try:
            return str(self.rpc.call("sendrawtransaction", raw_tx.hex()))
        except RpcError as exc:
            if exc.code in _REJECT_CODES:
                reason, _sep, details = exc.message.partition(", ")
                raise BroadcastRejected(reason, code=exc.code, details=details or None) from exc
            raise

    def estimate_fee(self, target_blocks: int) -> FeeEstimate:
        result = self.rpc.call("estimatesmartfee", target_blocks)
        if "feerate" not in result:
            return FeeEstimate(self._fallback, target_blocks, True)
        return FeeEstimate(btc_to_sats(result["feerate"]), int(result.get("blocks", target_blocks)), False)

    def mine(self, blocks: int = 1, *, address: str) -> list[str]:
        """Regtest only: generatetoaddress."""
        return [str(h) for h in self.rpc.call("generatetoaddress", blocks, address)]
