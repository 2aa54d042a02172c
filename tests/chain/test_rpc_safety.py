"""Safety rules of Core's sendrawtransaction and reorgs: maxburnamount, maxfeerate, re-added transactions."""

from __future__ import annotations

import pytest

from coffer.chain.regtest import RegtestNode, RpcServer
from coffer.chain.regtest.node import DEFAULT_PAYOUT_SCRIPT
from coffer.chain.regtest.wire import parse_tx
from tests.chain.conftest import MINER_KEY, MINER_SCRIPT, mature_coins
from tests.chain.helpers import FEE_SATS, Prevout, spend_p2wpkh
from tests.chain.rpchelp import RawRpc

BURN_SCRIPT = bytes.fromhex("6a04deadbeef")




def _burning_tx(node: RegtestNode, burn_sats: int) -> bytes:
    coin = mature_coins(node)[0]
    return spend_p2wpkh(coin, MINER_KEY, [(burn_sats, BURN_SCRIPT),
                                          (coin.value_sats - burn_sats - FEE_SATS, MINER_SCRIPT)])


def test_burn_above_maxburnamount_is_refused(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """An OP_RETURN output carrying value above maxburnamount (default 0) is -25 and not broadcast."""
    node, _server, rpc = served
    raw = _burning_tx(node, 1_000)
    assert (-25, "Unspendable output exceeds maximum configured by user (maxburnamount)") == rpc.error(
        "sendrawtransaction", raw.hex())
    assert [] == rpc("getrawmempool")


def test_burn_within_maxburnamount_is_sent(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """The same burn is accepted when maxburnamount covers it."""
    node, _server, rpc = served
    raw = _burning_tx(node, 1_000)
    txid = rpc("sendrawtransaction", raw.hex(), 0.10, 0.00001)
    assert [txid] == rpc("getrawmempool")


@pytest.mark.parametrize("rate", [1, "1.5", 21])
def test_maxfeerate_of_one_btc_or_more_is_refused(served: tuple[RegtestNode, RpcServer, RawRpc], rate: object) -> None:
    """maxfeerate at or above 1 BTC/kvB is -8, for sendrawtransaction and testmempoolaccept alike."""
    node, _server, rpc = served
    raw = spend_p2wpkh(mature_coins(node)[0], MINER_KEY, [(10_000, MINER_SCRIPT)])
    message = "Fee rates larger than or equal to 1BTC/kvB are not accepted"
    assert (-8, message) == rpc.error("sendrawtransaction", raw.hex(), rate)
    assert (-8, message) == rpc.error("testmempoolaccept", [raw.hex()], rate)


def test_negative_amount_is_out_of_range(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """A negative maxburnamount is -3 "Amount out of range"; nine decimals is -3 "Invalid amount"."""
    node, _server, rpc = served
    raw = _burning_tx(node, 0)
    assert (-3, "Amount out of range") == rpc.error("sendrawtransaction", raw.hex(), 0.1, -1)
    assert (-3, "Invalid amount") == rpc.error("sendrawtransaction", raw.hex(), "0.000000001")


CHAIN_LENGTH = 40  # longer than Core's 25-transaction package limit


def _chain(start: Prevout, length: int) -> list[bytes]:
    raws, coin = [], start
    for _ in range(length):
        value = coin.value_sats - FEE_SATS
        raw = spend_p2wpkh(coin, MINER_KEY, [(value, MINER_SCRIPT)])
        raws.append(raw)
        coin = Prevout(parse_tx(raw).txid, 0, value, MINER_SCRIPT)
    return raws


def test_reorg_re_adds_every_transaction_past_package_limits(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """A block holding a 40-transaction chain, invalidated, puts all 40 back in the mempool (Core
    bypasses the package limits for transactions returning from disconnected blocks)."""
    node, _server, rpc = served
    raws = _chain(mature_coins(node)[0], CHAIN_LENGTH)
    node.generate_block(DEFAULT_PAYOUT_SCRIPT, [parse_tx(raw) for raw in raws])
    assert [] == rpc("getrawmempool")
    rpc("invalidateblock", rpc("getbestblockhash"))
    expected = sorted(parse_tx(raw).txid_hex for raw in raws)
    assert expected == sorted(rpc("getrawmempool"))
    assert CHAIN_LENGTH == rpc("getmempoolentry", parse_tx(raws[-1]).txid_hex)["ancestorcount"]


def test_reorg_re_adds_zero_fee_transaction(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """A zero-fee transaction mined in a block returns to the mempool when the block is disconnected."""
    node, _server, rpc = served
    coin = mature_coins(node)[0]
    raw = spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats, MINER_SCRIPT)])
    code, message = rpc.error("sendrawtransaction", raw.hex())
    assert (-26, "min relay fee not met, 0 < ") == (code, message[:len("min relay fee not met, 0 < ")])
    node.generate_block(DEFAULT_PAYOUT_SCRIPT, [parse_tx(raw)])
    rpc("invalidateblock", rpc("getbestblockhash"))
    assert [parse_tx(raw).txid_hex] == rpc("getrawmempool")
