"""Ethereum behind the EthereumChain interface: embedded py-evm (eth-tester) and any JSON-RPC node.

Both go through web3.py, so one implementation serves both; only mining differs. Also the pure
EIP-1559 encoding that lets a signature made elsewhere (an HSM, a threshold-ECDSA quorum) become
a raw transaction: `Eip1559Tx.signing_hash()` and `Eip1559Tx.raw(y_parity, r, s)` (low-S enforced).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
import rlp
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3
from web3.exceptions import TransactionNotFound as Web3TransactionNotFound
from web3.exceptions import Web3RPCError

from coffer.chain.errors import BroadcastRejected, ChainUnavailable, DecodeError
from coffer.chain.interface import EthFeeEstimate, EthReceipt
from coffer.keyholder.limits import restore_recursion_limit

restore_recursion_limit()  # importing web3 (py_ecc) raised it to 100,000: never in a server process

__all__ = ["EmbeddedEthereum", "JsonRpcEthereum", "Eip1559Tx", "DEV_MNEMONIC", "DEV_HD_PATH",
           "SECP256K1_ORDER", "DEFAULT_PRIORITY_FEE_WEI", "MINE_BLOCKS_MAX"]

# Hardhat's and Anvil's well-known development mnemonic: the same funded accounts in both backends.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_HD_PATH = "m/44'/60'/0'/0"
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
DEFAULT_PRIORITY_FEE_WEI = 10**9
MINE_BLOCKS_MAX = 10_000
RPC_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Eip1559Tx:
    """An EIP-1559 (type 2) transaction without access list entries."""

    chain_id: int
    nonce: int
    max_priority_fee_wei: int
    max_fee_wei: int
    gas: int
    to: bytes  # 20-byte address
    value_wei: int
    data: bytes = b""

    def _fields(self) -> list[Any]:
        if len(self.to) != 20:
            raise DecodeError("to must be a 20-byte address")
        return [self.chain_id, self.nonce, self.max_priority_fee_wei, self.max_fee_wei, self.gas, self.to,
                self.value_wei, self.data, []]

    def signing_hash(self) -> bytes:
        """keccak256(0x02 || rlp(fields)): the digest the sender's key signs."""
        return bytes(keccak(b"\x02" + rlp.encode(self._fields())))

    def raw(self, y_parity: int, r: int, s: int) -> bytes:
        """The signed transaction; a high S is normalised to low S (flipping y_parity)."""
        if y_parity not in (0, 1) or not 0 < r < SECP256K1_ORDER or not 0 < s < SECP256K1_ORDER:
            raise DecodeError("signature out of range")
        if s > SECP256K1_ORDER // 2:
            s, y_parity = SECP256K1_ORDER - s, 1 - y_parity
        encoded: bytes = rlp.encode([*self._fields(), y_parity, r, s])
        return b"\x02" + encoded


def _hex(value: Any) -> str:
    text = value.hex() if isinstance(value, bytes | bytearray) else str(value)
    return text if text.startswith("0x") else "0x" + text


class _Web3Ethereum:
    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def balance_wei(self, address: str) -> int:
        return int(self.w3.eth.get_balance(to_checksum_address(address)))

    def nonce(self, address: str) -> int:
        return int(self.w3.eth.get_transaction_count(to_checksum_address(address), "pending"))

    def send_raw_transaction(self, raw_tx: bytes) -> str:
        try:
            return _hex(self.w3.eth.send_raw_transaction(raw_tx))
        except Web3RPCError as exc:
            error: dict[str, Any] = dict((exc.rpc_response or {}).get("error") or {})
            raise BroadcastRejected(str(error.get("message") or exc.message or exc),
                                    code=int(error.get("code", -32000))) from exc
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise ChainUnavailable(f"cannot reach the node: {type(exc).__name__}") from exc
        except Exception as exc:  # eth-tester raises its own validation error types
            raise BroadcastRejected(str(exc)[:300]) from exc

    def receipt(self, tx_hash: str) -> EthReceipt | None:
        try:
            data = self.w3.eth.get_transaction_receipt(_hex(tx_hash))  # type: ignore[arg-type]
        except Web3TransactionNotFound:
            return None
        return EthReceipt(_hex(data["transactionHash"]), int(data["blockNumber"]), _hex(data["blockHash"]),
                          int(data["status"]), int(data["gasUsed"]), int(data["effectiveGasPrice"]))

    def confirmations(self, tx_hash: str) -> int:
        found = self.receipt(tx_hash)
        if found is None:
            return 0
        return max(self.block_number() - found.block_number + 1, 0)

    def base_fee_wei(self) -> int:
        return int(self.w3.eth.get_block("latest")["baseFeePerGas"])

    def fee_estimate(self) -> EthFeeEstimate:
        base = self.base_fee_wei()
        try:
            priority = int(self.w3.eth.max_priority_fee)
        except (Web3RPCError, ValueError):
            priority = DEFAULT_PRIORITY_FEE_WEI
        return EthFeeEstimate(base, priority, 2 * base + priority)


class EmbeddedEthereum(_Web3Ethereum):
    """An in-process py-evm chain (eth-tester) whose accounts come from the dev mnemonic."""

    def __init__(self, *, mnemonic: str = DEV_MNEMONIC, accounts: int = 10) -> None:
        from eth_tester import EthereumTester, PyEVMBackend
        from web3 import EthereumTesterProvider

        restore_recursion_limit()  # py-evm raised it when imported
        backend = PyEVMBackend.from_mnemonic(mnemonic, num_accounts=accounts, hd_path=DEV_HD_PATH)
        self.tester = EthereumTester(backend)
        super().__init__(Web3(EthereumTesterProvider(self.tester)))

    def mine(self, blocks: int = 1) -> None:
        if not 0 <= blocks <= MINE_BLOCKS_MAX:
            raise ValueError(f"blocks must be 0..{MINE_BLOCKS_MAX}")
        self.tester.mine_blocks(blocks)


class JsonRpcEthereum(_Web3Ethereum):
    """Any Ethereum JSON-RPC node over HTTP (geth, reth, hardhat, anvil ...)."""

    def __init__(self, url: str, *, timeout_s: float = RPC_TIMEOUT_S) -> None:
        self.url = url
        super().__init__(Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout_s})))

    def __repr__(self) -> str:
        return f"JsonRpcEthereum({self.url!r})"

    def mine(self, blocks: int = 1) -> None:
        """Dev nodes only (evm_mine, as hardhat, anvil and ganache offer)."""
        if not 0 <= blocks <= MINE_BLOCKS_MAX:
            raise ValueError(f"blocks must be 0..{MINE_BLOCKS_MAX}")
        for _ in range(blocks):
            response = self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            if response.get("error"):
                raise ChainUnavailable(f"evm_mine failed: {response['error']}")
