"""Bitcoin Core JSON-RPC conformance of `coffer regtest`'s server, called over real HTTP."""

from __future__ import annotations

import json
import socket
from decimal import Decimal
from pathlib import Path

import pytest
from embit import bip32
from embit.networks import NETWORKS

from coffer.chain.descriptors import address_to_script, script_to_address
from coffer.chain.regtest import RegtestNode, RpcDispatcher, RpcServer
from coffer.chain.regtest.wire import parse_tx
from tests.chain.conftest import MINER_KEY, MINER_SCRIPT, mature_coins
from tests.chain.helpers import (
    FEE_SATS,
    Prevout,
    flip_signature_byte,
    key,
    p2wpkh_script,
    spend_p2wpkh,
    vsize,
)
from tests.chain.rpchelp import AUTH, RawRpc, post

MINER_ADDRESS = script_to_address(MINER_SCRIPT)




def test_network_and_chain_info_shapes(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """getnetworkinfo and getblockchaininfo carry Core's fields with regtest values."""
    node, _server, rpc = served
    network = rpc("getnetworkinfo")
    assert {"version", "subversion", "protocolversion", "relayfee", "connections", "networkactive"} <= set(network)
    assert Decimal("0.00000100") == network["relayfee"]
    info = rpc("getblockchaininfo")
    assert ("regtest", node.height, node.best_hash[::-1].hex()) == (info["chain"], info["blocks"], info["bestblockhash"])
    assert {"headers", "difficulty", "mediantime", "chainwork", "initialblockdownload", "pruned"} <= set(info)
    assert (node.height, node.best_hash[::-1].hex()) == (rpc("getblockcount"), rpc("getbestblockhash"))


def test_getblockhash_and_range_error(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """getblockhash answers each height and -8 "Block height out of range" above the tip."""
    node, _server, rpc = served
    assert node.active_hash(5)[::-1].hex() == rpc("getblockhash", 5)
    assert (-8, "Block height out of range") == rpc.error("getblockhash", node.height + 1)


def test_getblock_verbosity_levels(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """getblock gives hex at 0, txids with confirmations/nextblockhash at 1, decoded txs with fees at 2."""
    node, _server, rpc = served
    coin = mature_coins(node)[0]
    rpc("sendrawtransaction", spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, MINER_SCRIPT)]).hex())
    [block_hash] = rpc("generatetoaddress", 1, MINER_ADDRESS)
    rpc("generatetoaddress", 1, MINER_ADDRESS)
    assert node.raw_block(bytes.fromhex(block_hash)[::-1]).hex() == rpc("getblock", block_hash, 0)
    one = rpc("getblock", block_hash, 1)
    assert (2, node.height - 1, 2) == (one["confirmations"], one["height"], one["nTx"])
    assert node.best_hash[::-1].hex() == one["nextblockhash"]
    assert "nextblockhash" not in rpc("getblock", node.best_hash[::-1].hex())
    two = rpc("getblock", block_hash, 2)
    assert one["tx"] == [tx["txid"] for tx in two["tx"]]
    assert Decimal("0.00002000") == two["tx"][1]["fee"]
    assert "coinbase" in two["tx"][0]["vin"][0]
    assert (-5, "Block not found") == rpc.error("getblock", "00" * 32)


def test_getblockheader_verbose_and_hex(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """getblockheader returns the 80-byte header as hex or Core's fields."""
    node, _server, rpc = served
    block_hash = rpc("getblockhash", 3)
    header = rpc("getblockheader", block_hash)
    assert (3, "207fffff", rpc("getblockhash", 2), rpc("getblockhash", 4)) == (
        header["height"], header["bits"], header["previousblockhash"], header["nextblockhash"])
    assert node.raw_block(bytes.fromhex(block_hash)[::-1])[:80].hex() == rpc("getblockheader", block_hash, False)


def test_transactions_mempool_and_txout(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """sendrawtransaction, getrawmempool, getmempoolentry, gettxout and getrawtransaction agree."""
    _node, _server, rpc = served
    coin = mature_coins(served[0])[0]
    raw = spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, p2wpkh_script(key(71)))])
    txid = rpc("sendrawtransaction", raw.hex())
    assert [txid] == rpc("getrawmempool")
    entry = rpc("getmempoolentry", txid)
    assert (Decimal("0.00002000"), vsize(raw)) == (entry["fees"]["base"], entry["vsize"])
    assert txid in rpc("getrawmempool", True)
    assert rpc("gettxout", coin.txid[::-1].hex(), coin.vout) is None
    assert 0 == rpc("gettxout", txid, 0)["confirmations"]
    assert rpc("gettxout", txid, 0, False) is None
    assert raw.hex() == rpc("getrawtransaction", txid)
    rpc("generatetoaddress", 2, MINER_ADDRESS)
    verbose = rpc("getrawtransaction", txid, True)
    assert (2, txid, "witness_v0_keyhash") == (verbose["confirmations"], verbose["txid"],
                                               verbose["vout"][0]["scriptPubKey"]["type"])
    out = rpc("gettxout", txid, 0)
    assert (2, Decimal(coin.value_sats - FEE_SATS) / 10**8, False) == (out["confirmations"], out["value"], out["coinbase"])
    assert (-5, "Transaction not in mempool") == rpc.error("getmempoolentry", txid)
    assert -5 == rpc.error("getrawtransaction", "11" * 32)[0]


def test_sendrawtransaction_rejections_use_core_codes(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """Rejections: -26 with the reason, -25 for missing inputs, -22 for undecodable hex."""
    node, _server, rpc = served
    coin = mature_coins(node)[0]
    raw = spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, MINER_SCRIPT)])
    from coffer.chain.regtest.wire import parse_tx

    bad = flip_signature_byte(raw, parse_tx(raw).inputs[0].witness[0])
    code, message = rpc.error("sendrawtransaction", bad.hex())
    assert -26 == code and message.startswith("mempool-script-verify-flag-failed (")
    missing = spend_p2wpkh(Prevout(b"\x42" * 32, 0, 10**8, MINER_SCRIPT), MINER_KEY, [(10**8 - FEE_SATS, MINER_SCRIPT)])
    assert (-25, "bad-txns-inputs-missingorspent") == rpc.error("sendrawtransaction", missing.hex())
    assert -22 == rpc.error("sendrawtransaction", "00ff")[0]
    low = spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - 5, MINER_SCRIPT)])
    assert (-26, f"min relay fee not met, 5 < {vsize(low) * 100 // 1000}") == rpc.error("sendrawtransaction", low.hex())
    rich = spend_p2wpkh(coin, MINER_KEY, [(100_000, MINER_SCRIPT)])
    assert -25 == rpc.error("sendrawtransaction", rich.hex())[0]


def test_testmempoolaccept(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """testmempoolaccept reports allowed with fees or the reject-reason, takes a parent+child package, and
    never changes the mempool."""
    node, _server, rpc = served
    coin = mature_coins(node)[0]
    good = spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, MINER_SCRIPT)])
    dust = spend_p2wpkh(coin, MINER_KEY, [(1, MINER_SCRIPT), (coin.value_sats - FEE_SATS - 1, MINER_SCRIPT)])
    [ok] = rpc("testmempoolaccept", [good.hex()])
    assert (True, vsize(good), Decimal("0.00002000")) == (ok["allowed"], ok["vsize"], ok["fees"]["base"])
    [refused] = rpc("testmempoolaccept", [dust.hex()])
    assert (False, "dust") == (refused["allowed"], refused["reject-reason"])
    assert [] == rpc("getrawmempool")
    assert -8 == rpc.error("testmempoolaccept", [])[0]
    parent = parse_tx(good)
    child = spend_p2wpkh(Prevout(parent.txid, 0, coin.value_sats - FEE_SATS, MINER_SCRIPT), MINER_KEY,
                         [(coin.value_sats - 2 * FEE_SATS, MINER_SCRIPT)])
    assert [True, True] == [r["allowed"] for r in rpc("testmempoolaccept", [good.hex(), child.hex()])]
    [orphan] = rpc("testmempoolaccept", [child.hex()])
    assert "missing-inputs" == orphan["reject-reason"]
    assert [] == rpc("getrawmempool")


def test_scantxoutset_with_ranged_descriptor(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """scantxoutset finds coins paid to index 7 of a ranged wpkh descriptor, and by that index's own descriptor."""
    node, _server, rpc = served
    root = bip32.HDKey.from_seed(b"\x05" * 32, version=NETWORKS["regtest"]["xprv"])
    xpub = root.derive("m/84h/1h/0h").to_public().to_string()
    descriptor = f"wpkh({xpub}/0/*)"
    from coffer.chain.descriptors import descriptor_scripts

    spk = descriptor_scripts(descriptor, 7, 7)[0][0]
    coin = mature_coins(node)[0]
    txid = rpc("sendrawtransaction", spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, spk)]).hex())
    rpc("generatetoaddress", 1, MINER_ADDRESS)
    result = rpc("scantxoutset", "start", [{"desc": descriptor, "range": 20}])
    assert (True, node.height) == (result["success"], result["height"])
    [found] = result["unspents"]
    assert (txid, 0, spk.hex()) == (found["txid"], found["vout"], found["scriptPubKey"])
    assert Decimal(coin.value_sats - FEE_SATS) / 10**8 == result["total_amount"]
    assert found["desc"].startswith("wpkh(") and "#" in found["desc"]
    assert [] == rpc("scantxoutset", "start", [{"desc": descriptor, "range": [0, 6]}])["unspents"]
    [fixed_path] = rpc("scantxoutset", "start", [f"wpkh({xpub}/0/7)"])["unspents"]
    assert (txid, spk.hex()) == (fixed_path["txid"], fixed_path["scriptPubKey"])
    by_address = rpc("scantxoutset", "start", [f"addr({MINER_ADDRESS})"])
    assert len(by_address["unspents"]) == len(node.unspent([MINER_SCRIPT]))
    assert -5 == rpc.error("scantxoutset", "start", ["wpkh(nonsense)"])[0]


def test_invalidate_reconsider_and_generate_variants(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """invalidateblock/reconsiderblock move the tip; generatetodescriptor and generateblock mine."""
    node, _server, rpc = served
    height, tip = rpc("getblockcount"), rpc("getbestblockhash")
    assert rpc("invalidateblock", tip) is None
    assert (height - 1, -1) == (rpc("getblockcount"), rpc("getblockheader", tip)["confirmations"])
    assert rpc("reconsiderblock", tip) is None
    assert tip == rpc("getbestblockhash")
    assert -5 == rpc.error("invalidateblock", "00" * 32)[0]
    [mined] = rpc("generatetodescriptor", 1, f"addr({MINER_ADDRESS})")
    assert mined == rpc("getbestblockhash")
    assert -8 == rpc.error("generatetodescriptor", 1, "wpkh(tpubD6NzVbkrYhZ4WaWSyoBvQwbpLkojyoTZPRsgXELWz3Popb3qkjcJyJUGLnL4qHHoQvao8ESaAstxYSnhyswJ76uZPStJRJCTKvosUCJZL5B/*)")[0]
    assert (-5, "Error: Invalid address") == rpc.error("generatetoaddress", 1, "notanaddress")
    first, second = mature_coins(node, 2)
    in_pool = rpc("sendrawtransaction", spend_p2wpkh(first, MINER_KEY, [(first.value_sats - FEE_SATS, MINER_SCRIPT)]).hex())
    raw_hex = spend_p2wpkh(second, MINER_KEY, [(second.value_sats - FEE_SATS, MINER_SCRIPT)]).hex()
    built = rpc("generateblock", MINER_ADDRESS, [in_pool, raw_hex])
    block = rpc("getblock", built["hash"])
    assert built["hash"] == rpc("getbestblockhash")
    assert 3 == block["nTx"] and in_pool in block["tx"]
    assert -5 == rpc.error("generateblock", MINER_ADDRESS, ["22" * 32])[0]


def test_estimatesmartfee(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """estimatesmartfee says "Insufficient data" without fee history and -8 for a bad target."""
    _node, _server, rpc = served
    assert {"errors": ["Insufficient data or no feerate found"], "blocks": 0} == rpc("estimatesmartfee", 6)
    assert -8 == rpc.error("estimatesmartfee", 0)[0]


def test_protocol_errors(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """Malformed JSON -32700 (HTTP 500), unknown method -32601 (HTTP 404), wrong types -3, arity -1, names -8."""
    _node, server, rpc = served
    status, body = post(server.url, b'{"method": "getblockcount", ', AUTH)
    assert (500, -32700) == (status, json.loads(body)["error"]["code"])
    status, reply = rpc.reply("getnosuchthing")
    assert (404, -32601, "Method not found") == (status, reply["error"]["code"], reply["error"]["message"])
    status, reply = rpc.reply("getblockhash", "ten")
    assert (500, -3) == (status, reply["error"]["code"])
    assert "Wrong type passed:\n{\n    \"Position 1 (height)\": \"JSON value of type string is not of expected type number\"\n}" == reply["error"]["message"]
    assert -3 == rpc.error("getblock", 5)[0]
    assert -1 == rpc.error("getblockhash")[0]
    assert -1 == rpc.error("getblockcount", 1)[0]
    assert -8 == rpc.error("getblock", "zz" * 32)[0]
    status, body = post(server.url, json.dumps({"method": "getblockhash", "params": {"height": 1}, "id": 1}).encode(), AUTH)
    assert json.loads(body)["result"] == rpc("getblockhash", 1)
    status, body = post(server.url, json.dumps({"method": "getblockhash", "params": {"hight": 1}, "id": 1}).encode(), AUTH)
    assert -8 == json.loads(body)["error"]["code"]


def test_batch_and_json_rpc_2(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """A batch gets replies in order; JSON-RPC 2.0 errors come with HTTP 200, notifications with 204."""
    _node, server, rpc = served
    batch = [{"jsonrpc": "1.0", "id": i, "method": m, "params": p}
             for i, (m, p) in enumerate([("getblockcount", []), ("nosuch", []), ("getblockhash", [0])])]
    status, body = post(server.url, json.dumps(batch).encode(), AUTH)
    replies = json.loads(body)
    assert 200 == status
    assert [0, 1, 2] == [r["id"] for r in replies]
    assert rpc("getblockcount") == replies[0]["result"]
    assert -32601 == replies[1]["error"]["code"]
    status, body = post(server.url, json.dumps({"jsonrpc": "2.0", "id": 9, "method": "nosuch"}).encode(), AUTH)
    reply = json.loads(body)
    assert (200, "2.0", -32601) == (status, reply["jsonrpc"], reply["error"]["code"])
    assert "result" not in reply
    assert (204, b"") == post(server.url, json.dumps({"jsonrpc": "2.0", "method": "getblockcount"}).encode(), AUTH)


def test_bad_auth_is_401(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """A wrong password or no credentials get HTTP 401 with an empty body."""
    _node, server, _rpc = served
    body = json.dumps({"method": "getblockcount", "params": [], "id": 1}).encode()
    assert (401, b"") == post(server.url, body, ("alice", "wrong"))
    assert (401, b"") == post(server.url, body, None)


def test_cookie_auth(node: RegtestNode) -> None:
    """Without rpcuser the server writes DATADIR/.cookie (mode 600) and accepts exactly that secret."""
    server = RpcServer(RpcDispatcher(node), port=0).start()
    try:
        cookie = Path(node.datadir / ".cookie")
        user, _sep, password = cookie.read_text().partition(":")
        assert ("__cookie__", 0o600) == (user, cookie.stat().st_mode & 0o777)
        assert node.height == RawRpc(server.url, (user, password))("getblockcount")
        body = json.dumps({"method": "getblockcount", "params": [], "id": 1}).encode()
        assert 401 == post(server.url, body, ("__cookie__", "guess"))[0]
    finally:
        server.close()
    assert not (node.datadir / ".cookie").exists()


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))
            address = str(sock.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_server_binds_loopback_only(served: tuple[RegtestNode, RpcServer, RawRpc], node: RegtestNode) -> None:
    """The server listens on 127.0.0.1 only and refuses to be bound to a public address."""
    _node, server, _rpc = served
    assert "127.0.0.1" == server.host
    with pytest.raises(ValueError):
        RpcServer(RpcDispatcher(node), port=0, host="0.0.0.0", rpcuser="a", rpcpassword="b")
    other = _non_loopback_address()
    if other is not None:
        with socket.socket() as sock:
            sock.settimeout(2)
            assert 0 != sock.connect_ex((other, server.port))


def test_address_helpers_round_trip() -> None:
    """Regtest addresses and scripts convert both ways; mainnet addresses are refused."""
    assert MINER_SCRIPT == address_to_script(MINER_ADDRESS or "")
    from coffer.chain.errors import DecodeError

    with pytest.raises(DecodeError):
        address_to_script("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")


def test_getblock_verbosity_3_chaintips_and_descriptor_helpers(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """getblock 3 carries prevouts from undo data; getchaintips shows forks; descriptor RPCs derive addresses."""
    node, _server, rpc = served
    coin = mature_coins(node)[0]
    rpc("sendrawtransaction", spend_p2wpkh(coin, MINER_KEY, [(coin.value_sats - FEE_SATS, MINER_SCRIPT)]).hex())
    [block_hash] = rpc("generatetoaddress", 1, MINER_ADDRESS)
    spend = rpc("getblock", block_hash, 3)["tx"][1]
    assert (True, 1, Decimal(coin.value_sats) / 10**8, Decimal("0.00002000")) == (
        spend["vin"][0]["prevout"]["generated"], spend["vin"][0]["prevout"]["height"],
        spend["vin"][0]["prevout"]["value"], spend["fee"])
    rpc("invalidateblock", block_hash)
    rpc("generatetoaddress", 2, MINER_ADDRESS)
    tips = rpc("getchaintips")
    assert ("active", 0, node.height) == (tips[0]["status"], tips[0]["branchlen"], tips[0]["height"])
    assert {"height": node.height - 1, "hash": block_hash, "branchlen": 1, "status": "invalid"} in tips
    pubkey = key(72).get_public_key().sec().hex()
    info = rpc("getdescriptorinfo", f"wpkh({pubkey})")
    assert (False, True, False) == (info["isrange"], info["issolvable"], info["hasprivatekeys"])
    assert [script_to_address(p2wpkh_script(key(72)))] == rpc("deriveaddresses", info["descriptor"])
    root = bip32.HDKey.from_seed(b"\x06" * 32, version=NETWORKS["regtest"]["xprv"])
    ranged = f"wpkh({root.derive('m/84h/1h/0h').to_public().to_string()}/0/*)"
    assert 3 == len(rpc("deriveaddresses", ranged, [0, 2]))
    assert -8 == rpc.error("deriveaddresses", ranged)[0]


def test_arbitrary_parameters_never_crash_a_method(node: RegtestNode) -> None:
    """Random JSON parameters to every method give a result or a typed RPC error, never an internal error."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from coffer.chain.errors import ChainError
    from coffer.chain.regtest import RpcFault

    dispatcher = RpcDispatcher(node)
    # Left out: methods that mine, stop, move the process-wide kernel clock, or wait for a block by design.
    blocking = ("stop", "generatetoaddress", "generatetodescriptor", "setmocktime", "waitfornewblock", "waitforblock",
                "waitforblockheight")
    methods = [m for m in dispatcher.methods() if m not in blocking]
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False),
                        st.text(max_size=70), st.sampled_from(["00" * 32, node.best_hash[::-1].hex(), "zz", ""]))
    values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                           st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                          max_leaves=6)

    @given(st.sampled_from(methods), st.lists(values, max_size=4))
    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    def check(method: str, params: list[object]) -> None:
        try:
            dispatcher.call(method, params)
        except (RpcFault, ChainError):
            pass

    check()
