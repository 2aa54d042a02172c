"""Spends judged by the embedded node: valid ones accepted and mined, bad ones refused with Core's reasons."""

from __future__ import annotations

import pytest

from coffer.chain.errors import BroadcastRejected
from coffer.chain.regtest import RegtestNode
from coffer.chain.regtest.policy import PolicySettings
from coffer.chain.regtest.wire import parse_tx
from tests.chain.conftest import MINER_KEY, MINER_SCRIPT, mature_coins
from tests.chain.helpers import (
    FEE_SATS,
    Prevout,
    flip_signature_byte,
    key,
    multisig_witness_script,
    p2tr_script,
    p2wpkh_script,
    p2wsh_script,
    sign_p2wsh_multisig,
    sign_taproot_keypath,
    spend_p2wpkh,
    unsigned,
    vsize,
)


def _confirm(node: RegtestNode, raw: bytes) -> bytes:
    tx, _fee = node.accept_transaction(raw)
    node.generate(1, MINER_SCRIPT)
    assert node.best_hash == node.tx_block(tx.txid)
    return tx.txid


def _fund(node: RegtestNode, spk: bytes) -> Prevout:
    coin = mature_coins(node)[0]
    value = coin.value_sats - FEE_SATS
    txid = _confirm(node, spend_p2wpkh(coin, MINER_KEY, [(value, spk)]))
    return Prevout(txid, 0, value, spk)


def test_p2wpkh_spend_is_accepted_and_indexed(node: RegtestNode) -> None:
    """A P2WPKH spend enters the mempool, is mined, and the index moves the coin to the new script."""
    receiver = p2wpkh_script(key(11))
    funded = _fund(node, receiver)
    assert [(funded.txid, 0)] == [op for op, _coin in node.unspent([receiver])]
    assert node.unspent([receiver])[0][1].value_sats == funded.value_sats


def test_p2wsh_two_of_three_multisig_spend_is_accepted(node: RegtestNode) -> None:
    """A 2-of-3 P2WSH multisig spend signed by two of the keys is accepted and mined."""
    keys = [key(21), key(22), key(23)]
    witness_script = multisig_witness_script(keys)
    funded = _fund(node, p2wsh_script(witness_script))
    tx = unsigned([funded], [(funded.value_sats - FEE_SATS, p2wpkh_script(key(24)))])
    sign_p2wsh_multisig(tx, 0, witness_script, [keys[0], keys[2]], funded.value_sats)
    txid = _confirm(node, tx.serialize())
    assert node.tx_block(txid) is not None


def test_taproot_key_path_spend_with_external_schnorr_signature_is_accepted(node: RegtestNode) -> None:
    """A Taproot key-path spend signed by coincurve over embit's BIP-341 sighash is accepted and mined."""
    owner = key(31)
    funded = _fund(node, p2tr_script(owner))
    tx = unsigned([funded], [(funded.value_sats - FEE_SATS, p2tr_script(key(32)))])
    sign_taproot_keypath(tx, 0, owner, [funded])
    txid = _confirm(node, tx.serialize())
    assert node.tx_block(txid) is not None


EVAL_FALSE = "Script evaluated without error but finished with a false/empty top stack element"


def test_changed_signature_byte_is_rejected(node: RegtestNode) -> None:
    """One changed byte in the DER signature fails libbitcoinkernel's script check, with Core's text."""
    coin = mature_coins(node)[0]
    raw = spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, MINER_SCRIPT)])
    signature = parse_tx(raw).inputs[0].witness[0]
    with pytest.raises(BroadcastRejected) as caught:
        node.accept_transaction(flip_signature_byte(raw, signature))
    assert f"mempool-script-verify-flag-failed ({EVAL_FALSE})" == caught.value.reason
    assert {} == node.mempool_entries()


def test_changed_taproot_signature_byte_is_rejected(node: RegtestNode) -> None:
    """One changed byte of a Schnorr signature is refused as an invalid Schnorr signature."""
    owner = key(33)
    funded = _fund(node, p2tr_script(owner))
    tx = unsigned([funded], [(funded.value_sats - FEE_SATS, p2tr_script(key(34)))])
    sign_taproot_keypath(tx, 0, owner, [funded])
    raw = tx.serialize()
    with pytest.raises(BroadcastRejected) as caught:
        node.accept_transaction(flip_signature_byte(raw, parse_tx(raw).inputs[0].witness[0]))
    assert "mempool-script-verify-flag-failed (Invalid Schnorr signature)" == caught.value.reason


def test_multisig_with_one_signature_changed_is_rejected(node: RegtestNode) -> None:
    """A 2-of-3 spend with one corrupted signature is refused."""
    keys = [key(41), key(42), key(43)]
    witness_script = multisig_witness_script(keys)
    funded = _fund(node, p2wsh_script(witness_script))
    tx = unsigned([funded], [(funded.value_sats - FEE_SATS, p2wpkh_script(key(44)))])
    sign_p2wsh_multisig(tx, 0, witness_script, keys[:2], funded.value_sats)
    raw = tx.serialize()
    with pytest.raises(BroadcastRejected) as caught:
        node.accept_transaction(flip_signature_byte(raw, parse_tx(raw).inputs[0].witness[1]))
    assert f"mempool-script-verify-flag-failed ({EVAL_FALSE})" == caught.value.reason


def test_double_spend_in_mempool_replaces_without_signal(node: RegtestNode) -> None:
    """Full RBF (Core 31.99 has no opt-in rule): a conflicting spend paying more replaces one that did not signal."""
    coin = mature_coins(node)[0]
    first, _fee = node.accept_transaction(spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, MINER_SCRIPT)]))
    second = spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - 2 * FEE_SATS, p2wpkh_script(key(51)))])
    replacement, _fee = node.accept_transaction(second)
    assert [replacement.txid] == list(node.mempool_entries())
    assert first.txid != replacement.txid


def test_double_spend_of_confirmed_coin_is_missing_inputs(node: RegtestNode) -> None:
    """Spending a coin already spent in a block is bad-txns-inputs-missingorspent (code -25)."""
    coin = mature_coins(node)[0]
    _confirm(node, spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, MINER_SCRIPT)]))
    again = spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - 2 * FEE_SATS, p2wpkh_script(key(52)))])
    with pytest.raises(BroadcastRejected) as caught:
        node.accept_transaction(again)
    assert ("bad-txns-inputs-missingorspent", -25) == (caught.value.reason, caught.value.code)


def test_immature_coinbase_spend_is_rejected(node: RegtestNode) -> None:
    """Spending the newest coinbase is bad-txns-premature-spend-of-coinbase with its depth."""
    newest = max(node.unspent([MINER_SCRIPT]), key=lambda item: item[1].height)
    from tests.chain.helpers import prevout

    coin = prevout(*newest)
    with pytest.raises(BroadcastRejected) as caught:
        node.accept_transaction(spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, MINER_SCRIPT)]))
    assert "bad-txns-premature-spend-of-coinbase" == caught.value.reason
    assert "bad-txns-premature-spend-of-coinbase, tried to spend coinbase at depth 1" == caught.value.message


def test_non_standard_output_is_rejected(node: RegtestNode) -> None:
    """An output script of no standard type is refused as "scriptpubkey"."""
    coin = mature_coins(node)[0]
    weird = bytes.fromhex("51ae")  # OP_1 OP_CHECKMULTISIG: valid script, not standard
    raw = spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, weird)])
    with pytest.raises(BroadcastRejected) as caught:
        node.accept_transaction(raw)
    assert "scriptpubkey" == caught.value.reason


def test_dust_output_is_rejected(node: RegtestNode) -> None:
    """A P2WPKH output below 294 sats is dust."""
    coin = mature_coins(node)[0]
    raw = spend_p2wpkh(coin, MINER_KEY, [(293, MINER_SCRIPT), (coin.value_sats - FEE_SATS - 293, MINER_SCRIPT)])
    with pytest.raises(BroadcastRejected) as caught:
        node.accept_transaction(raw)
    assert "dust" == caught.value.reason


def test_low_fee_is_rejected(node: RegtestNode) -> None:
    """A fee below 0.1 sat/vB (Core 31.99's relay fee) is "min relay fee not met" with Core's detail."""
    coin = mature_coins(node)[0]
    raw = spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - 5, MINER_SCRIPT)])
    with pytest.raises(BroadcastRejected) as caught:
        node.accept_transaction(raw)
    assert "min relay fee not met" == caught.value.reason
    assert f"min relay fee not met, 5 < {vsize(raw) * 100 // 1000}" == caught.value.message


def test_op_return_bytes_limited_by_datacarriersize(node: RegtestNode) -> None:
    """By default two OP_RETURN outputs of 83 bytes are standard; with -datacarriersize=83 the second is
    "datacarrier" (the limit counts every OP_RETURN output's bytes together)."""
    first, second = mature_coins(node, 2)
    data = b"\x6a\x4c\x50" + b"\x00" * 80
    outputs = [(0, data), (0, data)]
    node.accept_transaction(spend_p2wpkh(first, MINER_KEY, [*outputs, (first.value_sats - FEE_SATS, MINER_SCRIPT)]))
    node.close()
    with RegtestNode(node.datadir, policy_settings=PolicySettings(datacarrier_size=83)) as strict:
        with pytest.raises(BroadcastRejected) as caught:
            strict.accept_transaction(spend_p2wpkh(second, MINER_KEY,
                                                   [*outputs, (second.value_sats - FEE_SATS, MINER_SCRIPT)]))
        assert "datacarrier" == caught.value.reason


def test_mempool_chain_is_mined_in_order(node: RegtestNode) -> None:
    """A child spending an unconfirmed parent is accepted and both land in the next block."""
    coin = mature_coins(node)[0]
    receiver = key(61)
    parent_raw = spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, p2wpkh_script(receiver))])
    parent, _fee = node.accept_transaction(parent_raw)
    child_in = Prevout(parent.txid, 0, coin.value_sats - FEE_SATS, p2wpkh_script(receiver))
    child, _fee = node.accept_transaction(spend_p2wpkh(child_in, receiver, [(child_in.value_sats - FEE_SATS,
                                                                             MINER_SCRIPT)]))
    assert [parent.txid] == node.mempool_relatives(child.txid)[0]
    node.generate(1, MINER_SCRIPT)
    assert node.tx_block(parent.txid) == node.tx_block(child.txid) == node.best_hash
    assert {} == node.mempool_entries()


def test_any_changed_byte_of_a_signed_spend_is_refused(node: RegtestNode) -> None:
    """Every single-byte change of a signed P2WPKH spend is refused and leaves the mempool empty."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    coin = mature_coins(node)[0]
    raw = spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, MINER_SCRIPT)])

    @given(st.integers(0, len(raw) - 1), st.integers(1, 255))
    @settings(max_examples=200, deadline=None)
    def check(position: int, mask: int) -> None:
        mutated = raw[:position] + bytes([raw[position] ^ mask]) + raw[position + 1:]
        with pytest.raises(BroadcastRejected):
            node.accept_transaction(mutated)
        assert {} == node.mempool_entries()

    check()
    node.accept_transaction(raw)


RBF_SEQUENCE = 0xFFFFFFFD


def test_opt_in_replacement_with_higher_fee_replaces(node: RegtestNode) -> None:
    """A BIP125-signalling transaction is replaced by one paying a higher fee rate and more fees."""
    coin = mature_coins(node)[0]
    first, _fee = node.accept_transaction(spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, MINER_SCRIPT)],
                                                       sequence=RBF_SEQUENCE))
    bump, fee = node.accept_transaction(spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - 3 * FEE_SATS, MINER_SCRIPT)],
                                                     sequence=RBF_SEQUENCE))
    assert [bump.txid] == list(node.mempool_entries())
    assert 3 * FEE_SATS == fee
    node.generate(1, MINER_SCRIPT)
    assert node.tx_block(bump.txid) is not None and node.tx_block(first.txid) is None


def test_replacement_without_enough_fee_is_rejected(node: RegtestNode) -> None:
    """A replacement not paying a higher fee rate is "insufficient fee" with Core's detail."""
    coin = mature_coins(node)[0]
    first, _fee = node.accept_transaction(spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, MINER_SCRIPT)],
                                                       sequence=RBF_SEQUENCE))
    with pytest.raises(BroadcastRejected) as caught:
        node.accept_transaction(spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, p2wpkh_script(key(53)))],
                                             sequence=RBF_SEQUENCE))
    assert "insufficient fee" == caught.value.reason
    assert "new feerate 0.00018181 BTC/kvB <= old feerate 0.00018181 BTC/kvB" in caught.value.message
    assert [first.txid] == list(node.mempool_entries())


def test_cluster_beyond_limit_is_rejected(node: RegtestNode) -> None:
    """With -limitclustercount=5 the sixth transaction of an unconfirmed chain is too-large-cluster
    (Core 31.99's cluster limit, 64 by default, replaces the 25-ancestor rule)."""
    node.close()
    with RegtestNode(node.datadir, policy_settings=PolicySettings(cluster_count_max=5)) as limited:
        current = mature_coins(limited)[0]
        for _ in range(5):
            tx, _fee = limited.accept_transaction(
                spend_p2wpkh(current, MINER_KEY, [(current.value_sats - FEE_SATS, MINER_SCRIPT)]))
            current = Prevout(tx.txid, 0, current.value_sats - FEE_SATS, MINER_SCRIPT)
        with pytest.raises(BroadcastRejected) as caught:
            limited.accept_transaction(spend_p2wpkh(current, MINER_KEY, [(current.value_sats - FEE_SATS, MINER_SCRIPT)]))
        assert "too-large-cluster" == caught.value.reason
        limited.generate(1, MINER_SCRIPT)
        assert {} == limited.mempool_entries()


def test_too_many_sigops_is_rejected(node: RegtestNode) -> None:
    """201 bare 1-of-3 multisig outputs (80 sigop cost each) plus the input exceed the 16000 standard limit."""
    from embit import script as embit_script

    bare = embit_script.multisig(1, [key(100 + i).get_public_key() for i in range(3)]).data
    coin = mature_coins(node)[0]
    outputs = [(1_000, bare)] * 201 + [(coin.value_sats - 201_000 - 50_000, MINER_SCRIPT)]
    with pytest.raises(BroadcastRejected) as caught:
        node.accept_transaction(spend_p2wpkh(coin, MINER_KEY, outputs))
    assert ("bad-txns-too-many-sigops", "16081") == (caught.value.reason, caught.value.details)
    node.accept_transaction(spend_p2wpkh(coin, MINER_KEY, outputs[:199] + outputs[-1:]))
    node.generate(1, MINER_SCRIPT)
    assert {} == node.mempool_entries()
