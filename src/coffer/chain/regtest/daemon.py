"""Starting the embedded node and its RPC server from bitcoind-style options (`coffer regtest`)."""

from __future__ import annotations

from pathlib import Path

import structlog

from coffer.chain.interface import BlockConnected, ChainEvent
from coffer.chain.regtest.node import RegtestNode
from coffer.chain.regtest.options import CoreOptions
from coffer.chain.regtest.rpc import RpcDispatcher
from coffer.chain.regtest.server import RpcServer, WorkLimits

__all__ = ["open_node_and_server"]

log = structlog.get_logger("coffer.chain.regtest")


def _log_to(path: Path) -> None:
    from coffer.log import configure_logging

    path.parent.mkdir(parents=True, exist_ok=True)
    configure_logging("INFO", stream=path.open("a", buffering=1, encoding="utf-8"))


def open_node_and_server(datadir: Path, options: CoreOptions, *, host: str = "127.0.0.1",
                         rpcuser: str | None = None, rpcpassword: str | None = None) -> tuple[RegtestNode, RpcServer]:
    """Open the node in `datadir` with the options' policy and start its RPC server; the caller closes both."""
    if options.debug_log_file is not None:
        _log_to(options.debug_log_file)
    for name in options.ignored:
        log.info("option_ignored", option=name, why="this node has no part that it steers")
    node = RegtestNode(datadir, policy_settings=options.policy, mock_time=options.mock_time,
                       persist_mempool=options.persist_mempool)
    user = options.rpc_user if options.rpc_user is not None else rpcuser
    password = options.rpc_password if options.rpc_password is not None else rpcpassword
    dispatcher = RpcDispatcher(node, deprecated_rpc=options.deprecated_rpc, ua_comments=options.ua_comments,
                               log_path=str(options.debug_log_file or ""), prune_mib=options.prune_mib)
    try:
        server = RpcServer(dispatcher, port=options.rpc_port or 18443, host=host, rpcuser=user, rpcpassword=password,
                           cookie_file=options.rpc_cookie_file,
                           limits=WorkLimits(options.rpc_threads, options.rpc_work_queue)).start()
    except (OSError, ValueError):
        node.close()
        raise
    if options.stop_at_height:
        _stop_at_height(node, server, options.stop_at_height)
    return node, server


def _stop_at_height(node: RegtestNode, server: RpcServer, height: int) -> None:
    """Core's -stopatheight: shut down once the active chain reaches the height."""
    def on_event(event: ChainEvent) -> None:
        if isinstance(event, BlockConnected) and event.height >= height:
            log.info("stop_at_height", height=event.height)
            server.request_stop()

    node.subscribe(on_event)
