"""The outside world's wallet on the embedded regtest chain: it mines coinbases to its own key
and pays deposit addresses, the way a client's own wallet would. Tests and the demo only; its
key is a fixed test key and holds regtest coins of no value.
"""

from __future__ import annotations

from embit import ec, script
from embit.networks import NETWORKS
from embit.script import Script, Witness, address_to_scriptpubkey
from embit.transaction import SIGHASH, Transaction, TransactionInput, TransactionOutput

from coffer.chain import BitcoinChain
from coffer.errors import CofferError

__all__ = ["Faucet"]

COINBASE_MATURITY = 100
FEE_RATE_SAT_VB = 3


class Faucet:
    def __init__(self, chain: BitcoinChain, *, seed: int = 0xFA0CE7) -> None:
        self._chain = chain
        self._key = ec.PrivateKey(seed.to_bytes(32, "big"))
        self._spk = bytes(script.p2wpkh(self._key.get_public_key()).data)
        self._spent: set[tuple[str, int]] = set()

    @property
    def address(self) -> str:
        return str(script.p2wpkh(self._key.get_public_key()).address(NETWORKS["regtest"]))

    @property
    def script_pubkey(self) -> bytes:
        return self._spk

    def fund(self, blocks: int = COINBASE_MATURITY + 10) -> None:
        """Mine coinbases to the faucet and let them mature."""
        self.mine(blocks)

    def mine(self, blocks: int = 1) -> list[str]:
        """Mine blocks paying the faucet (works on the embedded chain and over Core's RPC)."""
        hashes: list[str] = self._chain.mine(blocks, address=self.address)  # type: ignore[attr-defined]
        return hashes

    def pay(self, address: str, amount_sats: int) -> str:
        """Pay `address` from one mature coin, change back to the faucet; returns the txid."""
        return self.pay_many([(address, amount_sats)])

    def pay_many(self, payments: list[tuple[str, int]]) -> str:
        tip = self._chain.tip().height
        total = sum(amount for _, amount in payments)
        coins = [u for u in self._chain.unspent([self._spk])
                 if (u.txid, u.vout) not in self._spent
                 and (not u.coinbase or tip - u.height + 1 > COINBASE_MATURITY)]
        vsize = 11 + 68 + 31 * (len(payments) + 1)
        fee = FEE_RATE_SAT_VB * vsize
        coin = next((u for u in sorted(coins, key=lambda u: u.amount_sats) if u.amount_sats >= total + fee + 1000), None)
        if coin is None:
            raise CofferError("faucet has no mature coin large enough; call fund() or mine more blocks")
        outputs = [TransactionOutput(amount, Script(address_to_scriptpubkey(addr).data)) for addr, amount in payments]
        outputs.append(TransactionOutput(coin.amount_sats - total - fee, Script(self._spk)))
        tx = Transaction(version=2, vin=[TransactionInput(bytes.fromhex(coin.txid), coin.vout)], vout=outputs)
        digest = tx.sighash_segwit(0, script.p2pkh(self._key.get_public_key()), coin.amount_sats)
        signature = self._key.sign(digest).serialize() + bytes([SIGHASH.ALL])
        tx.vin[0].witness = Witness([signature, self._key.get_public_key().sec()])
        txid = self._chain.broadcast(bytes(tx.serialize()))
        self._spent.add((coin.txid, coin.vout))
        return txid
