"""The custody pipeline `coffer serve` runs: approved withdrawals dispatched as durable jobs, the
cold pipeline stepped by the leader, states read back by the exchange API's desk, with signer
processes and the embedded regtest node."""

from __future__ import annotations

import datetime as dt

import pytest

from coffer.ledger import AccountKey
from coffer.pipeline.custody import CustodyPipeline
from coffer.pipeline.desk import CustodyDesk
from coffer.policy.approval import sign_approval
from coffer.policy.roles import Role
from coffer.withdrawals import WithdrawalFinal
from tests.cold.test_processes import APPROVER, DEST, Site, _funded_client, site  # noqa: F401 - fixture

pytestmark = pytest.mark.slow


def _approved(site: Site, client: str, amount: int) -> str:  # noqa: F811
    now = dt.datetime.now(dt.UTC)
    submitted = site.desk.request(client, "BTC", amount, DEST, now=now)
    approval = sign_approval(APPROVER, request=submitted.request, operator_id="bob", role=Role.APPROVER,
                             expires_at_s=int(now.timestamp()) + 600)
    assert site.desk.approve(approval, now=now).allowed
    return submitted.request.digest_hex


def test_the_pipeline_pays_an_approved_withdrawal_through_every_state(site: Site) -> None:  # noqa: F811
    """approved → (tick) dispatched, batched, signed by the drawn signer processes, broadcast → mined → confirmed."""
    coordinator = site.coordinator
    desk = CustodyDesk(coordinator, site.desk, assets=("BTC",))
    pipeline = CustodyPipeline(coordinator, site.desk, node="test-a")
    _funded_client(site, "paula", 50_000_000)
    digest = _approved(site, "paula", 20_000_000)
    assert "approved" == desk.withdrawal(digest).state
    first = pipeline.tick()
    assert (True, (digest,)) == (first.leader, first.dispatched)
    assert first.cold["sealed"] is not None and first.cold["broadcast"]
    assert "broadcast" == desk.withdrawal(digest).state
    coordinator.bitcoin.mine(3)  # type: ignore[attr-defined]
    settled = pipeline.tick()
    assert [first.cold["sealed"]] == settled.cold["settled"]
    view = desk.withdrawal(digest)
    assert ("confirmed", first.cold["sealed"]) == (view.state, view.batch_id)
    assert 30_000_000 == coordinator.ledger.balance(AccountKey.available("paula", "BTC"))
    assert 0 == coordinator.ledger.balance(AccountKey.held("paula", "BTC"))
    assert () == pipeline.tick().dispatched, "a dispatched request is never handed over twice"
    pipeline.leadership.release()


def test_a_second_coordinator_does_no_periodic_work_while_the_first_leads(site: Site) -> None:  # noqa: F811
    """Two pipelines on one database: only the leader ticks; the other takes over when the leader stops."""
    leader = CustodyPipeline(site.coordinator, site.desk, node="lead")
    other = CustodyPipeline(site.coordinator, site.desk, node="other")
    try:
        assert leader.tick().leader
        assert not other.tick().leader
        leader.leadership.release()
        assert other.tick().leader
    finally:
        leader.leadership.release()
        other.leadership.release()


def test_a_cancelled_withdrawal_is_never_dispatched(site: Site) -> None:  # noqa: F811
    """Cancelled after approval and before the pipeline's tick: not dispatched, funds back, cancel again refused."""
    coordinator = site.coordinator
    desk = CustodyDesk(coordinator, site.desk, assets=("BTC",))
    pipeline = CustodyPipeline(coordinator, site.desk, node="test-c")
    _funded_client(site, "carl", 30_000_000)
    digest = _approved(site, "carl", 10_000_000)
    assert "cancelled" == desk.cancel(digest, by="client:carl", now=dt.datetime.now(dt.UTC)).state
    assert digest not in pipeline.tick().dispatched
    assert 30_000_000 == coordinator.ledger.balance(AccountKey.available("carl", "BTC"))
    with pytest.raises(WithdrawalFinal):
        desk.cancel(digest, by="client:carl", now=dt.datetime.now(dt.UTC))
    pipeline.leadership.release()


def test_a_queued_cold_withdrawal_can_be_cancelled_until_a_batch_takes_it(site: Site) -> None:  # noqa: F811
    """Attested and queued: cancel takes it out of the queue and releases the hold; once batched it is too late."""
    coordinator, now = site.coordinator, dt.datetime.now(dt.UTC)
    desk = CustodyDesk(coordinator, site.desk, assets=("BTC",))
    _funded_client(site, "queenie", 30_000_000)
    early = _approved(site, "queenie", 5_000_000)
    late = _approved(site, "queenie", 6_000_000)
    site.desk.dispatch(early, now=now)
    site.desk.dispatch(late, now=now)
    assert "cancelled" == desk.cancel(early, by="client:queenie", now=now).state
    assert 30_000_000 - 6_000_000 == coordinator.ledger.balance(AccountKey.available("queenie", "BTC"))
    batch_id = coordinator.cold.seal_batch(now=now)
    assert batch_id is not None and "batched" == desk.withdrawal(late).state
    with pytest.raises(WithdrawalFinal):
        desk.cancel(late, by="client:queenie", now=now)
    coordinator.cold.abandon_batch(batch_id, "test over", now=now, requeue=False)
