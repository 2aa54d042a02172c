"""Reconciliation inside `coffer serve`: the checks, their scheduler and the halt, from the
configuration (`[recon]` intervals and errors_before_halt, `[halt]` quorum).

    runtime = ReconRuntime.from_config(config, engine, switch, node="coord-1",
                                       exchange=ExchangeClient(url), onchain=OnchainSource(...))
    runtime.start(); ...; runtime.stop()
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine

from coffer.recon.errors import ReconError
from coffer.recon.halt import HaltSwitch
from coffer.recon.onchain import OnchainCheckInput
from coffer.recon.scheduler import Scheduler
from coffer.recon.service import PositionReconciler, Reconciler

__all__ = ["ReconRuntime"]


class ReconRuntime:
    """A Reconciler and its Scheduler; `exchange` is an ExchangeFeed that is also a MarginLedger
    (the simulator client is), or pass `positions` built from separate feed and ledger."""

    def __init__(self, engine: Engine, switch: HaltSwitch, *, node: str, positions: PositionReconciler | None = None,
                 onchain: Callable[[], OnchainCheckInput] | None = None, positions_interval_s: float = 15.0,
                 onchain_interval_s: float = 600.0, errors_before_halt: int = 3) -> None:
        if positions is None and onchain is None:
            raise ReconError("nothing to reconcile: give an exchange feed, an on-chain source, or both")
        self.reconciler = Reconciler(switch, positions=positions, onchain=onchain, engine=engine,
                                     errors_before_halt=errors_before_halt)
        self.scheduler = Scheduler(engine, self.reconciler.jobs(positions_interval_s=positions_interval_s,
                                                                onchain_interval_s=onchain_interval_s), node=node)

    @classmethod
    def from_config(cls, config: Any, engine: Engine, switch: HaltSwitch, *, node: str, exchange: Any | None = None,
                    onchain: Callable[[], OnchainCheckInput] | None = None) -> ReconRuntime:
        positions = PositionReconciler(exchange, exchange) if exchange is not None else None
        return cls(engine, switch, node=node, positions=positions, onchain=onchain,
                   positions_interval_s=float(config.recon.positions_interval_s),
                   onchain_interval_s=float(config.recon.onchain_interval_s),
                   errors_before_halt=config.recon.errors_before_halt)

    def start(self) -> ReconRuntime:
        self.scheduler.start()
        return self

    def stop(self) -> None:
        self.scheduler.stop()
