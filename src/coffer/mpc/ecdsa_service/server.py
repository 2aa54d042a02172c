"""The DKLs23 engine of co-signer N, as mounted on the co-signer process (`coffer cosigner --id N`).

It shares the co-signer's runtime with the FROST engine of the same number (one token, pins,
guard, history and halt watcher: `coffer.mpc.service.server.open_runtime`) and keeps its own
store in HOME/cosigners/N/ecdsa/ with the EVM chain ids it signs for (chains.json). Its routes
are `coffer.keyholder.routes.ECDSA_ROUTES`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from coffer.errors import ConfigError, Refused
from coffer.keyholder.routes import ECDSA_ROUTES
from coffer.keyholder.server import Mount
from coffer.log import get_logger
from coffer.mpc.ecdsa_service.cosigner import EcdsaCosigner
from coffer.mpc.ecdsa_service.store import EcdsaStore, EcdsaVault
from coffer.mpc.errors import InvalidMessage, MalformedInput
from coffer.mpc.service.errors import CosignerRefused, UnknownKey
from coffer.mpc.service.server import CosignerRuntime, cosigner_dir, cosigner_error_status
from coffer.policy.errors import PolicyError

__all__ = ["open_ecdsa_cosigner", "ecdsa_mount", "ecdsa_dir", "write_chain_pins", "read_chain_pins",
           "CHAIN_PINS_FILE", "EXPECTED_ERRORS"]

EXPECTED_ERRORS: Final = (CosignerRefused, InvalidMessage, MalformedInput, UnknownKey, PolicyError, Refused)
log = get_logger("coffer.mpc.ecdsa_service.server")


def ecdsa_dir(home: Path, cosigner_id: int) -> Path:
    return cosigner_dir(home, cosigner_id) / "ecdsa"


CHAIN_PINS_FILE: Final = "chains.json"


def write_chain_pins(home: Path, cosigner_id: int, chain_ids: list[int]) -> Path:
    """Provisioning: the EVM chain ids this co-signer signs for (HOME/cosigners/N/ecdsa/chains.json)."""
    directory = ecdsa_dir(home, cosigner_id)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / CHAIN_PINS_FILE
    path.write_text(json.dumps({"chain_ids": sorted(set(chain_ids))}))
    return path


def read_chain_pins(home: Path, cosigner_id: int) -> frozenset[int] | None:
    """The pinned chain ids, or None when none were provisioned (then any chain id is signed for)."""
    path = ecdsa_dir(home, cosigner_id) / CHAIN_PINS_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        values = data["chain_ids"]
        if set(data) != {"chain_ids"} or not isinstance(values, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise ConfigError("chain pins are malformed", path=str(path)) from None
    return frozenset(values)


def ecdsa_mount(cosigner: EcdsaCosigner) -> Mount:
    return Mount(ECDSA_ROUTES, cosigner, cosigner_error_status)


def open_ecdsa_cosigner(home: Path, runtime: CosignerRuntime, *, clock: Callable[[], dt.datetime] | None = None,
                        cosigner_class: type[EcdsaCosigner] = EcdsaCosigner
                        ) -> tuple[EcdsaCosigner, Callable[[], None]]:
    """The DKLs23 engine of co-signer N on its runtime: its own store, the runtime's token and guard."""
    directory = ecdsa_dir(home, runtime.cosigner_id)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = EcdsaStore(directory / "ecdsa.db")
    kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
    chain_ids = read_chain_pins(home, runtime.cosigner_id)
    if chain_ids is None:
        log.warning("ecdsa.cosigner.no_chain_pins", cosigner=runtime.cosigner_id)
    cosigner = cosigner_class(runtime.cosigner_id, store, EcdsaVault(runtime.hsm, runtime.cosigner_id),
                              guard=runtime.guard, halt=runtime.watcher, chain_ids=chain_ids, **kwargs)
    return cosigner, store.close
