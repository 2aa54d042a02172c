"""Embedded Bitcoin regtest node judged by libbitcoinkernel, and the JSON-RPC server in front of it."""

from coffer.chain.regtest.node import RegtestNode, subsidy_sats

__all__ = ["RegtestNode", "subsidy_sats"]
