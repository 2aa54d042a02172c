"""Core's RPC methods the test framework and common clients need: shapes and error codes."""

from __future__ import annotations

import json
import re
import threading
from decimal import Decimal

import pytest

from coffer.chain.descriptors import script_to_address
from coffer.chain.regtest import RegtestNode, RpcServer
from tests.chain.conftest import MINER_KEY, MINER_SCRIPT, mature_coins
from tests.chain.helpers import FEE_SATS, spend_p2wpkh
from tests.chain.rpchelp import AUTH, RawRpc, post

MINER_ADDRESS = script_to_address(MINER_SCRIPT)




def test_setmocktime_sets_block_times(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """After setmocktime T (above the median time past) the next block's time is T; 0 restores the clock."""
    node, _server, rpc = served
    mock = rpc("getblockheader", rpc("getbestblockhash"))["time"] + 1000
    assert rpc("setmocktime", mock) is None
    block_hash = rpc("generatetoaddress", 1, MINER_ADDRESS)[0]
    assert mock == rpc("getblockheader", block_hash)["time"]
    assert rpc("setmocktime", 0) is None
    assert mock != node.now()


@pytest.mark.parametrize("value", [-1, 9_223_372_037])
def test_setmocktime_range(served: tuple[RegtestNode, RpcServer, RawRpc], value: int) -> None:
    """A negative or too large mock time is -8 with Core's range text."""
    _node, _server, rpc = served
    assert (-8, f"Mocktime must be in the range [0, 9223372036], not {value}.") == rpc.error("setmocktime", value)


def test_syncwithvalidationinterfacequeue_is_null(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """syncwithvalidationinterfacequeue answers null (the node's notifications are synchronous)."""
    assert served[2]("syncwithvalidationinterfacequeue") is None


def test_stop_with_hidden_wait_argument(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """stop accepts Core's hidden wait (ms), answers "Bitcoin Core stopping", then the server stops."""
    _node, server, rpc = served
    assert "Bitcoin Core stopping" == rpc("stop", 10)
    assert server.stopped.wait(30)


def test_waitforblockheight_returns_on_new_block(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """waitforblockheight returns the tip once it reaches the height; on timeout it returns the tip as is."""
    node, _server, rpc = served
    assert {"hash": node.best_hash[::-1].hex(), "height": 110} == rpc("waitforblockheight", 111, 50)
    results: list[object] = []
    waiter = threading.Thread(target=lambda: results.append(rpc("waitforblockheight", 111)))
    waiter.start()
    mined = rpc("generatetoaddress", 1, MINER_ADDRESS)[0]
    waiter.join(60)
    assert [{"hash": mined, "height": 111}] == results


def test_waitfornewblock_negative_timeout(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """waitfornewblock with a negative timeout is -1 "Negative timeout"."""
    assert (-1, "Negative timeout") == served[2].error("waitfornewblock", -1)


def test_network_info_reports_embedded_core_version(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """getnetworkinfo reports 319900, the version string libbitcoinkernel itself carries (v31.99.0)."""
    from pathlib import Path

    import pbk

    library = next((Path(pbk.__file__).parent / "_libs").glob("*bitcoinkernel*")).read_bytes()
    major, minor, build = (int(part) for part in re.search(rb"v(\d+)\.(\d+)\.(\d+)-", library).groups())  # type: ignore[union-attr]
    network = served[2]("getnetworkinfo")
    assert (major * 10_000 + minor * 100 + build, f"/Satoshi:{major}.{minor}.{build}(coffer-regtest)/") == (
        network["version"], network["subversion"])


def test_genesis_coinbase_is_not_a_transaction(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """The genesis coinbase is outside the UTXO set and the index: getrawtransaction -5, gettxout null."""
    _node, _server, rpc = served
    genesis = rpc("getblock", rpc("getblockhash", 0))
    txid = genesis["tx"][0]
    assert -5 == rpc.error("getrawtransaction", txid)[0]
    assert rpc("gettxout", txid, 0) is None


def test_verbose_is_an_alias_of_verbosity(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """getblock and getrawtransaction take "verbose" for "verbosity" as named parameters."""
    _node, server, _rpc = served
    best = RawRpc(server.url, AUTH)("getbestblockhash")
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "getblock", "params": {"blockhash": best, "verbose": 2}})
    status, data = post(server.url, body.encode(), AUTH)
    assert (200, "vin") == (status, [key for key in json.loads(data)["result"]["tx"][0] if key == "vin"][0])


def test_verbosity_2_shows_prevout_and_fee_for_confirmed(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """getrawtransaction verbosity 2 of a confirmed spend carries fee and vin[].prevout from undo data."""
    node, _server, rpc = served
    coin = mature_coins(node)[0]
    raw = spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, MINER_SCRIPT)])
    txid = rpc("sendrawtransaction", raw.hex())
    assert "prevout" not in rpc("getrawtransaction", txid, 2)["vin"][0]  # not yet confirmed
    rpc("generatetoaddress", 1, MINER_ADDRESS)
    verbose = rpc("getrawtransaction", txid, 2)
    prevout = verbose["vin"][0]["prevout"]
    assert (Decimal("0.00002000"), Decimal(coin.value_sats) / 10**8, True) == (
        verbose["fee"], prevout["value"], prevout["generated"])


def test_mempool_sequence_only_grows(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """getrawmempool's mempool_sequence grows on every entry and on every removal by a block."""
    node, _server, rpc = served
    start = rpc("getrawmempool", False, True)["mempool_sequence"]
    coin = mature_coins(node)[0]
    rpc("sendrawtransaction", spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, MINER_SCRIPT)]).hex())
    added = rpc("getrawmempool", False, True)["mempool_sequence"]
    rpc("generatetoaddress", 1, MINER_ADDRESS)
    mined = rpc("getrawmempool", False, True)
    assert (start + 1, start + 2, []) == (added, mined["mempool_sequence"], mined["txids"])


def test_mempool_info_fields(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """getmempoolinfo has Core 31.99's fields (no fullrbf unless -deprecatedrpc=fullrbf)."""
    info = served[2]("getmempoolinfo")
    assert ["loaded", "size", "bytes", "usage", "total_fee", "maxmempool", "mempoolminfee", "minrelaytxfee",
            "incrementalrelayfee", "unbroadcastcount", "permitbaremultisig", "maxdatacarriersize",
            "limitclustercount", "limitclustersize", "optimal"] == list(info)
    assert (Decimal("0.00000100"), 100_000, 64, 101_000) == (
        info["minrelaytxfee"], info["maxdatacarriersize"], info["limitclustercount"], info["limitclustersize"])


def test_hidden_generate_and_help(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """generate is -32601 with Core's pointer to -generate; help names a command's usage; unknown is said so."""
    _node, _server, rpc = served
    code, message = rpc.error("generate")
    assert (-32601, True) == (code, message.startswith("generate\n\nhas been replaced by the -generate cli option"))
    assert "generate\n\n" not in rpc("help")
    assert rpc("help", "getblockhash").startswith("getblockhash height")
    assert "help: unknown command: nosuch" == rpc("help", "nosuch")


def test_getrpcinfo_lists_itself(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """getrpcinfo lists the running call (itself) with a duration in microseconds."""
    info = served[2]("getrpcinfo")
    assert ["getrpcinfo"] == [command["method"] for command in info["active_commands"]]
    assert info["active_commands"][0]["duration"] >= 0


def test_gettxoutsetinfo_shape_and_hash_types(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """gettxoutsetinfo counts the 110 coinbase outputs (genesis excluded); hash_type picks the hash; bad is -8."""
    node, _server, rpc = served
    info = rpc("gettxoutsetinfo")
    assert ["height", "bestblock", "txouts", "bogosize", "hash_serialized_3", "total_amount", "transactions",
            "disk_size"] == list(info)
    assert (110, 110, 110) == (info["height"], info["txouts"], info["transactions"])
    assert "muhash" in rpc("gettxoutsetinfo", "muhash")
    assert (-8, "'foo' is not a valid hash_type") == rpc.error("gettxoutsetinfo", "foo")
    assert node.best_hash[::-1].hex() == info["bestblock"]


def test_decodescript_wraps(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """decodescript of a P2PKH gives its P2SH address and a segwit P2WPKH form; of a P2SH, no wraps."""
    _node, _server, rpc = served
    p2pkh = "76a914" + "11" * 20 + "88ac"
    decoded = rpc("decodescript", p2pkh)
    assert ("pubkeyhash", "witness_v0_keyhash") == (decoded["type"], decoded["segwit"]["type"])
    assert decoded["p2sh"].startswith("2")
    p2sh = rpc("decodescript", "a914" + "22" * 20 + "87")
    assert ("scripthash", False, False) == (p2sh["type"], "p2sh" in p2sh, "segwit" in p2sh)


def test_getchaintxstats_and_errors(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """getchaintxstats counts transactions (genesis included) and refuses a window beyond the chain with -8."""
    _node, _server, rpc = served
    stats = rpc("getchaintxstats", 10)
    assert (111, 10, 10) == (stats["txcount"], stats["window_block_count"], stats["window_tx_count"])
    assert -8 == rpc.error("getchaintxstats", 110)[0]


def test_getnetworkhashps_errors(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """getnetworkhashps: nblocks 0 is -8, a missing height is -8, both types wrong are listed together (-3)."""
    _node, _server, rpc = served
    assert (-8, "Invalid nblocks. Must be a positive number or -1.") == rpc.error("getnetworkhashps", 0)
    assert (-8, "Block does not exist at specified height") == rpc.error("getnetworkhashps", 100, 999)
    assert (-3, 'Wrong type passed:\n{\n    "Position 1 (nblocks)": "JSON value of type string is not of expected '
                'type number",\n    "Position 2 (height)": "JSON value of type array is not of expected type number"\n}'
            ) == rpc.error("getnetworkhashps", "a", [])


def test_float_height_and_negative_count(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """getblockhash 1.5 is -1 "JSON integer out of range"; generatetoaddress -1 mines nothing."""
    _node, _server, rpc = served
    assert (-1, "JSON integer out of range") == rpc.error("getblockhash", 1.5)
    assert [] == rpc("generatetoaddress", -1, MINER_ADDRESS)


def test_getindexinfo_txindex(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """getindexinfo reports the always-on transaction index, synced at the tip."""
    assert {"txindex": {"synced": True, "best_block_height": 110}} == served[2]("getindexinfo", "txindex")


def test_tip_from_the_future_refuses_to_start(node: RegtestNode) -> None:
    """Opened with a mock time more than two hours before its tip, the node refuses with Core's init text."""
    from coffer.chain.regtest.node import FUTURE_TIP_MESSAGE, FutureTip

    tip_time = node.header(node.best_hash).time
    node.close()
    with pytest.raises(FutureTip) as caught:
        RegtestNode(node.datadir, mock_time=tip_time - 2 * 60 * 60 - 1)
    assert FUTURE_TIP_MESSAGE == str(caught.value)
    with RegtestNode(node.datadir, mock_time=tip_time - 2 * 60 * 60) as reopened:
        assert 110 == reopened.height
    from coffer.chain.regtest.kernel import set_kernel_mock_time

    set_kernel_mock_time(0)


def test_createrawtransaction_round_trips_through_decode(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """createrawtransaction builds an unsigned v2 transaction (BIP125 sequence by default) with an address
    output and a data output, which decoderawtransaction reads back."""
    _node, _server, rpc = served
    txid = "11" * 32
    raw = rpc("createrawtransaction", [{"txid": txid, "vout": 1}], [{MINER_ADDRESS: "0.5"}, {"data": "beef"}])
    decoded = rpc("decoderawtransaction", raw)
    assert (2, txid, 1, 0xFFFFFFFD) == (decoded["version"], decoded["vin"][0]["txid"], decoded["vin"][0]["vout"],
                                        decoded["vin"][0]["sequence"])
    assert ([Decimal("0.50000000"), Decimal("0E-8")], "6a02beef") == (
        [out["value"] for out in decoded["vout"]], decoded["vout"][1]["scriptPubKey"]["hex"])


@pytest.mark.parametrize(("inputs", "outputs", "expected"), [
    ([{"txid": "11" * 32}], {}, (-8, "Invalid parameter, missing vout key")),
    ([{"txid": "11" * 32, "vout": -1}], {}, (-8, "Invalid parameter, vout cannot be negative")),
    ([{"txid": "11" * 32, "vout": 0, "sequence": 2**32}], {}, (-8, "Invalid parameter, sequence number is out of range")),
    ([], {"notanaddress": 1}, (-5, "Invalid Bitcoin address: notanaddress")),
    ([], [{"data": "00"}, {"data": "01"}], (-8, "Invalid parameter, duplicate key: data")),
])
def test_createrawtransaction_errors(served: tuple[RegtestNode, RpcServer, RawRpc], inputs: object, outputs: object,
                                     expected: tuple[int, str]) -> None:
    """Bad inputs and outputs get Core's codes and texts."""
    assert expected == served[2].error("createrawtransaction", inputs, outputs)
