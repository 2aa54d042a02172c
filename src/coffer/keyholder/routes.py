"""The route tables of the key holders and the table of processes: data, importable without
starting anything (docs/architecture.md is generated from them).

A `Route` maps a path to the name of an engine method taking the raw body (`bytes`) and
returning a JSON object, with the certificate common names allowed to call it. Routes that act
(sign, deal, register, refresh) are refused when the caller's clock, sent with every request,
is skewed from the key holder's by more than the bound (`acts=True`); read-only routes are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["Route", "RouteTable", "ProcessSpec", "COORDINATOR", "COLD_SIGNER_ROUTES", "FROST_ROUTES",
           "ECDSA_ROUTES", "BATCH_PATH", "PROCESSES", "tables_for"]

COORDINATOR: Final = "coordinator"
BATCH_PATH: Final = "/v1/batch"
_COORDINATOR_ONLY: Final = frozenset({COORDINATOR})


@dataclass(frozen=True, slots=True)
class Route:
    path: str
    handler: str
    peers: frozenset[str] = _COORDINATOR_ONLY
    method: str = "POST"
    acts: bool = True


@dataclass(frozen=True, slots=True)
class RouteTable:
    """The routes one engine serves; `body_bytes_max` bounds every body sent to them."""

    engine: str
    routes: tuple[Route, ...]
    body_bytes_max: int = 4 * 1024 * 1024

    def paths(self) -> tuple[str, ...]:
        return tuple(route.path for route in self.routes)


def _read(path: str, handler: str, *, method: str = "POST") -> Route:
    return Route(path, handler, method=method, acts=False)


COLD_SIGNER_ROUTES: Final = RouteTable("cold-signer", (
    _read("/v1/health", "health", method="GET"),
    _read("/v1/key", "key", method="GET"),
    Route("/v1/register", "register"),
    Route("/v1/prove", "prove"),
    Route("/v1/sign", "sign"),
), body_bytes_max=16_000_000)

FROST_ROUTES: Final = RouteTable("frost", (
    _read("/v1/status", "status"),
    _read("/v1/hostkey", "hostkey"),
    Route("/v1/dkg/step1", "dkg_step1"),
    Route("/v1/dkg/step2", "dkg_step2"),
    Route("/v1/dkg/finalize", "dkg_finalize"),
    Route("/v1/dkg/investigate", "dkg_investigate"),
    Route("/v1/sign/commit", "sign_commit"),
    Route("/v1/sign/share", "sign_share"),
    Route("/v1/refresh/deal", "refresh_deal"),
    Route("/v1/reshare/deal", "reshare_deal"),
    Route("/v1/dealing/receive", "dealing_receive"),
    Route("/v1/dealing/confirm", "dealing_confirm"),
    Route("/v1/governance/apply", "governance_apply"),
))

ECDSA_ROUTES: Final = RouteTable("ecdsa", (
    _read("/v1/ecdsa/status", "status"),
    _read("/v1/ecdsa/hostkey", "hostkey"),
    Route("/v1/ecdsa/dkg/step1", "dkg_step1"),
    Route("/v1/ecdsa/dkg/step2", "dkg_step2"),
    Route("/v1/ecdsa/dkg/finalize", "dkg_finalize"),
    Route("/v1/ecdsa/pair/start", "pair_start"),
    Route("/v1/ecdsa/pair/step", "pair_step"),
    Route("/v1/ecdsa/sign/round1", "sign_round1"),
    Route("/v1/ecdsa/sign/round2", "sign_round2"),
    Route("/v1/ecdsa/sign/round3", "sign_round3"),
    Route("/v1/ecdsa/sign/abort", "sign_abort"),
    Route("/v1/ecdsa/reshare/deal", "reshare_deal"),
    Route("/v1/ecdsa/reshare/receive", "reshare_receive"),
    Route("/v1/ecdsa/reshare/confirm", "reshare_confirm"),
))

ENGINES: Final = {table.engine: table for table in (COLD_SIGNER_ROUTES, FROST_ROUTES, ECDSA_ROUTES)}


def tables_for(engines: tuple[str, ...]) -> tuple[RouteTable, ...]:
    return tuple(ENGINES[name] for name in engines)


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """One kind of process: its command, the name on its certificate, what it holds, whom it calls."""

    kind: str
    command: str
    certificate_name: str
    holds: str
    engines: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()


PROCESSES: Final = (
    ProcessSpec("coordinator", "coffer serve", COORDINATOR, "no key and no share (HSM: policy attestation only)",
                calls=("cold-signer", "cosigner")),
    ProcessSpec("cold-signer", "coffer signer --id N", "signer-N", "one cold seed, sealed in its own HSM token",
                engines=("cold-signer",)),
    ProcessSpec("cosigner", "coffer cosigner --id N", "cosigner-N",
                "one share per threshold key (FROST and DKLs23), sealed in its own HSM token",
                engines=("frost", "ecdsa")),
)
