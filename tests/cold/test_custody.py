"""Cold custody end to end on the embedded regtest node (Bitcoin Core's consensus decides)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from coffer.chain.regtest import RegtestChain
from coffer.cold.bundle import ApprovedPayment, SigningBundle
from coffer.cold.custody import ColdCustody, SignerUnavailable
from coffer.cold.signer import ColdSigner
from coffer.ledger import AccountKey, Kind, Ledger, Transfer, credit, debit
from coffer.testing.faucet import Faucet

from .conftest import NOW, SignerSet

DEST = "bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85"


class LocalSigner:
    """In-process SignerClient over a ColdSigner (the process version talks HTTP)."""

    def __init__(self, signer: ColdSigner, *, silent: bool = False) -> None:
        self.signer_id = signer.signer_id
        self._signer = signer
        self.silent = silent
        self.asked = 0

    def export_key(self) -> dict:  # type: ignore[type-arg]
        return self._signer.export_key()

    def register(self, descriptor: str, first_addresses: list[str]) -> dict:  # type: ignore[type-arg]
        return self._signer.register(descriptor, first_addresses, NOW)

    def sign(self, bundle: SigningBundle) -> bytes:
        self.asked += 1
        if self.silent:
            raise SignerUnavailable(f"signer {self.signer_id} timed out")
        return self._signer.sign(SigningBundle.from_json(bundle.to_json()), NOW)


@pytest.fixture
def custody_env(signer_set: SignerSet, engine: Engine, tmp_path: Path):  # type: ignore[no-untyped-def]
    chain = RegtestChain.open(tmp_path / "chain")
    ledger = Ledger(engine)
    ledger.open_house_accounts(["BTC"], at=NOW)
    clients = {s.signer_id: LocalSigner(s) for s in signer_set.signers}
    # the ceremony builds its own wallet: new registrations of the same keys
    custody = ColdCustody(engine, chain, ledger, clients, confirmations=3)
    faucet = Faucet(chain)
    faucet.fund()
    yield custody, chain, ledger, faucet, clients, signer_set
    chain.close()


def _deposit(custody, chain, ledger, faucet, client: str, amount: int):  # type: ignore[no-untyped-def]
    ledger.open_client(client, ["BTC"], at=NOW)
    address = custody.deposit_address(client, now=NOW)
    txid = faucet.pay(address, amount)
    return address, txid


def test_deposit_is_credited_only_after_confirmations(custody_env) -> None:  # type: ignore[no-untyped-def]
    """A deposit is recorded when seen and credited to the client's own account after 3 confirmations."""
    custody, chain, ledger, faucet, _clients, _ = custody_env
    custody.setup(3, now=NOW)
    _, txid = _deposit(custody, chain, ledger, faucet, "alice", 2_000_000)
    chain.mine(1)
    assert [] == custody.scan_deposits(now=NOW)
    assert 0 == ledger.balance(AccountKey.available("alice", "BTC"))
    chain.mine(1)
    assert [] == custody.scan_deposits(now=NOW)
    chain.mine(1)
    credited = custody.scan_deposits(now=NOW)
    assert [(txid, 2_000_000)] == [(c.txid, c.amount_sats) for c in credited]
    assert 2_000_000 == ledger.balance(AccountKey.available("alice", "BTC"))
    assert [] == custody.scan_deposits(now=NOW)  # never twice
    assert 2_000_000 == ledger.balance(AccountKey.available("alice", "BTC"))


def test_reorg_before_credit_drops_the_pending_deposit(custody_env) -> None:  # type: ignore[no-untyped-def]
    """A deposit whose block is reorganised away before 3 confirmations is never credited."""
    custody, chain, ledger, faucet, _clients, _ = custody_env
    custody.setup(3, now=NOW)
    _deposit(custody, chain, ledger, faucet, "bob", 1_000_000)
    mined = chain.mine(1)
    custody.scan_deposits(now=NOW)
    assert 1 == len(custody.deposits())
    chain.node.invalidate_block(bytes.fromhex(mined[0])[::-1])
    chain.node.remove_from_mempool_all() if hasattr(chain.node, "remove_from_mempool_all") else None
    custody.scan_deposits(now=NOW)
    assert 0 == ledger.balance(AccountKey.available("bob", "BTC"))


def _withdraw(custody, ledger, client: str, request_id: str, amount: int) -> None:  # type: ignore[no-untyped-def]
    ledger.apply(Transfer(idempotency_key=f"hold:{request_id}", kind=Kind.WITHDRAWAL_HOLD,
                          postings=(debit(AccountKey.available(client, "BTC"), amount),
                                    credit(AccountKey.held(client, "BTC"), amount)), at=NOW))
    payment = ApprovedPayment({"request_id": request_id, "destination": DEST, "amount": amount}, (), {})
    custody.enqueue(request_id, client, DEST, amount, payment, now=NOW)


def test_withdrawal_batch_is_signed_by_the_drawn_quorum_broadcast_confirmed_and_settled(custody_env) -> None:  # type: ignore[no-untyped-def]
    """deposit → credit → withdrawal → batch → draw → 3 signatures → broadcast → confirmed → settled."""
    custody, chain, ledger, faucet, clients, signer_set = custody_env
    custody.setup(3, now=NOW)
    _deposit(custody, chain, ledger, faucet, "carol", 5_000_000)
    chain.mine(3)
    custody.scan_deposits(now=NOW)
    _withdraw(custody, ledger, "carol", "w1", 1_200_000)
    signer_set.guard.approved["w1"] = (DEST, 1_200_000)
    result = custody.run_once(now=NOW)
    batch_id = result["sealed"]
    assert batch_id is not None and 1 == len(result["broadcast"])
    draw = custody.draws(batch_id)[0]
    assert sorted(s for s, c in clients.items() if c.asked) == sorted(draw.nominated)
    chain.mine(3)
    assert [batch_id] == custody.run_once(now=NOW)["settled"]
    assert 3_800_000 == ledger.balance(AccountKey.available("carol", "BTC"))
    assert 0 == ledger.balance(AccountKey.held("carol", "BTC"))
    batch = custody.batch(batch_id)
    assert "confirmed" == batch["status"]
    custody_balance = ledger.balance(AccountKey.custody("cold", "BTC"))
    on_chain = sum(u.amount_sats for u in chain.unspent(custody.custody_scripts()))
    assert custody_balance == on_chain
    ledger.check_consistency()


def test_silent_nominee_triggers_a_recorded_redraw(custody_env) -> None:  # type: ignore[no-untyped-def]
    """If a nominee does not answer, a new draw without it is made and its reason recorded."""
    custody, chain, ledger, faucet, clients, signer_set = custody_env
    custody.setup(3, now=NOW)
    _deposit(custody, chain, ledger, faucet, "dave", 5_000_000)
    chain.mine(3)
    custody.scan_deposits(now=NOW)
    _withdraw(custody, ledger, "dave", "w2", 700_000)
    signer_set.guard.approved["w2"] = (DEST, 700_000)
    batch_id = custody.seal_batch(now=NOW)
    assert batch_id is not None
    first = custody.draws(batch_id) if custody.draws(batch_id) else None
    assert first is None
    # make the first nominee of attempt 0 silent
    from coffer.cold.draw import draw_quorum

    row = custody.batch(batch_id)
    preview = draw_quorum(batch_id=batch_id, tip_hash=row["tip_hash"], unsigned_txid=row["unsigned_txid"],
                          signer_ids=(1, 2, 3, 4, 5), threshold=3)
    clients[preview.nominated[0]].silent = True
    custody.sign_batch(batch_id, now=NOW)
    draws = custody.draws(batch_id)
    assert 2 == len(draws)
    assert preview.nominated[0] in draws[1].excluded
    assert preview.nominated[0] not in draws[1].nominated


def test_halt_stops_the_pipeline(custody_env) -> None:  # type: ignore[no-untyped-def]
    """While halted nothing is sealed, signed or broadcast."""
    custody, chain, ledger, faucet, clients, signer_set = custody_env
    custody.setup(3, now=NOW)
    _deposit(custody, chain, ledger, faucet, "erin", 5_000_000)
    chain.mine(3)
    custody.scan_deposits(now=NOW)
    _withdraw(custody, ledger, "erin", "w3", 700_000)
    custody._halted = lambda: True
    assert None is custody.run_once(now=NOW)["sealed"]
    assert all(0 == c.asked for c in clients.values())
