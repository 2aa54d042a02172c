"""A regtest faucet: pays exact amounts to any script, for tests and the demo. REGTEST ONLY.

Its key is a published constant (sha256 of a label): coins on regtest have no value, and anyone
reading this file can spend the faucet's coins. It must never be used on any other network.
"""

from __future__ import annotations

import hashlib

from embit import ec, script
from embit.script import Script, Witness
from embit.transaction import SIGHASH, Transaction, TransactionInput, TransactionOutput

from coffer.chain.errors import ChainError
from coffer.chain.regtest.mempool import COINBASE_MATURITY
from coffer.chain.regtest.node import RegtestNode

__all__ = ["Faucet", "FAUCET_FEE_SAT_PER_VB", "FAUCET_OUTPUTS_MAX"]

FAUCET_FEE_SAT_PER_VB = 2
FAUCET_OUTPUTS_MAX = 1000
MINING_ROUNDS_MAX = 20
_KEY = ec.PrivateKey(hashlib.sha256(b"coffer regtest faucet (public, worthless)").digest())


class Faucet:
    def __init__(self, node: RegtestNode) -> None:
        self.node = node
        self.script_pubkey: bytes = script.p2wpkh(_KEY.get_public_key()).data

    def __repr__(self) -> str:
        return "Faucet(regtest)"

    def _spendable(self) -> list[tuple[tuple[bytes, int], int]]:
        with self.node.lock:
            spend_height = self.node.height + 1
            coins = [(op, coin.value_sats) for op, coin in self.node.unspent([self.script_pubkey])
                     if not coin.coinbase or spend_height - coin.height >= COINBASE_MATURITY]
            busy = {txin for entry in self.node.mempool_entries().values()
                    for txin in ((i.prev_txid, i.prev_vout) for i in entry.tx.inputs)}
        return sorted([c for c in coins if c[0] not in busy], key=lambda c: -c[1])

    def send(self, outputs: list[tuple[bytes, int]], *, confirm: bool = True) -> str:
        """Pay each (scriptPubKey, amount_sats); change returns to the faucet. Returns the txid."""
        if not 1 <= len(outputs) <= FAUCET_OUTPUTS_MAX or any(amount <= 0 for _spk, amount in outputs):
            raise ChainError("faucet: 1..1000 outputs with positive amounts")
        total = sum(amount for _spk, amount in outputs)
        with self.node.lock:
            coins = self._spendable()
            for _round in range(MINING_ROUNDS_MAX):
                if sum(value for _op, value in coins) >= total + 100_000:
                    break
                self.node.generate(COINBASE_MATURITY + 1, self.script_pubkey)
                coins = self._spendable()
            else:
                raise ChainError("faucet: the subsidy has halved too far to mine that amount")
            chosen, value_in = [], 0
            for outpoint, value in coins:
                chosen.append((outpoint, value))
                value_in += value
                if value_in >= total + 100_000:
                    break
            vsize = 11 + 68 * len(chosen) + 43 * (len(outputs) + 1)
            fee = vsize * FAUCET_FEE_SAT_PER_VB
            tx = Transaction(vin=[TransactionInput(op[0][::-1], op[1]) for op, _v in chosen],
                             vout=[TransactionOutput(amount, Script(spk)) for spk, amount in outputs]
                             + [TransactionOutput(value_in - total - fee, Script(self.script_pubkey))])
            code = script.p2pkh(_KEY.get_public_key())
            for index, (_op, value) in enumerate(chosen):
                digest = tx.sighash_segwit(index, code, value)
                signature = _KEY.sign(digest).serialize() + bytes([SIGHASH.ALL])
                tx.vin[index].witness = Witness([signature, _KEY.get_public_key().sec()])
            parsed, _fee = self.node.accept_transaction(bytes(tx.serialize()))
            if confirm:
                self.node.generate(1)
            return parsed.txid_hex
