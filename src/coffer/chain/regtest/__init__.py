"""Embedded Bitcoin regtest node judged by libbitcoinkernel, and Core's JSON-RPC in front of it.

`RegtestNode` is the node; `RegtestChain` puts it behind the BitcoinChain interface;
`RpcDispatcher` + `RpcServer` serve Bitcoin Core's JSON-RPC for it on loopback.
"""

from coffer.chain.regtest.chain import RegtestChain
from coffer.chain.regtest.node import HALVING_INTERVAL, RegtestNode, subsidy_sats
from coffer.chain.regtest.rpc import RpcDispatcher, RpcFault
from coffer.chain.regtest.server import RpcServer

__all__ = ["RegtestNode", "RegtestChain", "RpcDispatcher", "RpcFault", "RpcServer", "subsidy_sats",
           "HALVING_INTERVAL"]
