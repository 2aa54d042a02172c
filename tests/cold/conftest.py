"""Cold custody fixtures: signers with their own SoftHSM2 tokens, a registered 3-of-5 wallet."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from coffer.cold.bundle import ApprovedPayment
from coffer.cold.descriptor import RECEIVE, ColdWallet
from coffer.cold.errors import SignerRefused
from coffer.cold.keystore import SeedVault
from coffer.cold.signer import ApprovedOutput, ColdSigner, SignerStore
from coffer.testing import make_token

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


class TableGuard:
    """Stand-in for the policy part's guard in the cold unit tests: approves the requests it was given."""

    def __init__(self) -> None:
        self.approved: dict[str, tuple[str, int]] = {}
        self.signed: list[str] = []

    def describe(self, payment: ApprovedPayment) -> ApprovedOutput:
        return ApprovedOutput(str(payment.request["request_id"]), str(payment.request["destination"]),
                              int(payment.request["amount"]))

    def clear(self, payments: tuple[ApprovedPayment, ...], now: dt.datetime) -> None:
        for payment in payments:
            request_id = str(payment.request["request_id"])
            if request_id not in self.approved:
                raise SignerRefused("request not approved", rule="policy.not_approved")
            if (payment.request["destination"], payment.request["amount"]) != self.approved[request_id]:
                raise SignerRefused("request differs from the approved one", rule="policy.attestation")
        self.signed.extend(str(p.request["request_id"]) for p in payments)


class FlagHalt:
    def __init__(self) -> None:
        self.halted = False

    def ensure_not_halted(self, now: dt.datetime) -> None:
        if self.halted:
            raise SignerRefused("a halt is in force", rule="halt")


@dataclass
class SignerSet:
    signers: list[ColdSigner]
    guard: TableGuard
    halt: FlagHalt
    wallet: ColdWallet


@pytest.fixture
def signer_set(tmp_path: Path) -> SignerSet:
    guard, halt = TableGuard(), FlagHalt()
    signers = []
    for signer_id in range(1, 6):
        token = make_token(f"signer-{signer_id}-{hashlib.sha256(str(tmp_path).encode()).hexdigest()[:8]}")
        vault = SeedVault(token.open(), tmp_path / f"s{signer_id}" / "seed.sealed", signer_id)
        vault.create()
        store = SignerStore(tmp_path / f"s{signer_id}" / "signer.db")
        signers.append(ColdSigner(signer_id, vault, store, network="regtest", request_guard=guard, halt_guard=halt))
    from coffer.cold.descriptor import KeyOrigin

    keys = tuple(KeyOrigin(k["fingerprint"], k["path"], k["xpub"]) for k in (s.export_key() for s in signers))
    wallet = ColdWallet(3, keys, "regtest")
    addresses = [wallet.address(RECEIVE, i) for i in range(5)]
    for signer in signers:
        signer.register(wallet.descriptor(RECEIVE), addresses, NOW)
    return SignerSet(signers, guard, halt, wallet)
