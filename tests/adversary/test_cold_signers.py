"""Attacks 5, 6 and 7 of issue 16 against five real `coffer signer` processes.

The attacker holds the coordinator's whole home: its database, its HSM PIN, its TLS key and the CA
key, and its CLI. Each attack is refused by the signer processes naming the rule, nothing is signed
or registered, and the legitimate version of the same action succeeds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from coffer.cold.bundle import SigningBundle
from coffer.cold.descriptor import RECEIVE, ColdWallet, KeyOrigin
from coffer.cold.draw import Draw, draw_quorum
from coffer.cold.errors import BundleInvalid, SignerRefused
from coffer.cold.service import HttpSignerClient
from coffer.cold.tables import cold_draws
from coffer.ledger import AccountKey
from coffer.policy import ApprovalRequirement, AttestedFacts, Decision, Route, attest_decision
from coffer.policy.approval import sign_approval
from coffer.policy.roles import Role
from coffer.testing.cold_site import APPROVER, DEST, ColdSite, start_cold_site
from coffer.testing.headers import mine_headers
from coffer.testing.tokens import process_softhsm_conf
from coffer.tls import issue_certificate

ROGUE = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ColdSite]:
    site = start_cold_site(tmp_path_factory.mktemp("adversary-cold"))
    yield site
    site.stop()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _client(site: ColdSite, signer_id: int) -> HttpSignerClient:
    """The attacker's client: the coordinator's own certificate and key, taken from its home."""
    return HttpSignerClient(signer_id, site.coordinator.signer_url(signer_id), site.coordinator.coordinator_tls(),
                            timeout_s=60)


def _sealed(site: ColdSite, client: str, amount: int) -> str:
    """An approved, attested withdrawal of `client`, sealed into a batch (not yet signed)."""
    site.funded_client(client, 4 * amount)
    now = _now()
    submitted = site.desk.request(client, "BTC", amount, DEST, now=now)
    site.desk.approve(sign_approval(APPROVER, request=submitted.request, operator_id="bob", role=Role.APPROVER,
                                    expires_at_s=int(now.timestamp()) + 600), now=now)
    site.desk.dispatch(submitted.request.digest_hex, now=now)
    batch_id = site.coordinator.cold.seal_batch(now=now)
    assert batch_id is not None
    return batch_id


def _verify_draw_cli(site: ColdSite, batch_id: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "coffer.cli", "cold", "verify-draw", batch_id, "--home",
                           str(site.home), "--no-chain"],  # the test process holds the embedded chain open
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, "SOFTHSM2_CONF": str(process_softhsm_conf())})


def _refusal(site: ColdSite, signer_id: int, bundle: SigningBundle) -> str:
    with pytest.raises(SignerRefused) as refused:
        _client(site, signer_id).sign(bundle)
    return refused.value.rule


def test_rogue_wallet_registration_is_refused(site: ColdSite, tmp_path: Path) -> None:
    """Attack 7: register a rogue 1-of-2 wallet (a signer's key beside the attacker's) with a co-signer's
    certificate minted from the CA key, then with the coordinator's own; refused (peer.name,
    register.second_wallet) and nothing is registered. Legit: the ceremony's wallet registers again."""
    coordinator = site.coordinator
    signer_key = _client(site, 1).export_key()
    from embit import bip32
    from embit.networks import NETWORKS

    intruder = bip32.HDKey.from_seed(b"\x07" * 32, version=NETWORKS["regtest"]["xprv"])
    account = intruder.derive("m/48h/1h/0h/2h").to_public()
    account.version = NETWORKS["regtest"]["xpub"]
    rogue = ColdWallet(1, (KeyOrigin(signer_key["fingerprint"], signer_key["path"], signer_key["xpub"]),
                           KeyOrigin(intruder.my_fingerprint.hex(), "48h/1h/0h/2h", account.to_base58())), "regtest")
    first = [rogue.address(RECEIVE, i) for i in range(5)]
    from coffer.layout import ceremony_directory

    # a co-signer's certificate from the ceremony's CA (as a co-signer host, or whoever holds the CA key, has one)
    cosigner_cert = issue_certificate(ceremony_directory(site.home), tmp_path / "cosigner-1", "cosigner-1")
    as_cosigner = HttpSignerClient(1, coordinator.signer_url(1), cosigner_cert, timeout_s=60)
    with pytest.raises(SignerRefused) as by_name:
        as_cosigner.register(rogue.descriptor(RECEIVE), first)
    assert "peer.name" == by_name.value.rule
    with pytest.raises(SignerRefused) as second:
        _client(site, 1).register(rogue.descriptor(RECEIVE), first)
    assert "register.second_wallet" == second.value.rule
    with pytest.raises(BundleInvalid, match="not registered"):
        _client(site, 1).prove_control(rogue.wallet_id, 0, 0, b"Coffer proof of reserves\nasset: BTC\nchain: regtest"
                                                              b"\nheight: 1\nblock: " + b"ab" * 32 + b"\n")
    wallet = coordinator.cold.wallet()
    again = _client(site, 1).register(wallet.descriptor(RECEIVE), [wallet.address(RECEIVE, i) for i in range(5)])
    assert wallet.wallet_id == again["wallet_id"]


def test_forged_facts_are_refused_by_signer_processes(site: ColdSite) -> None:
    """Attack 5 on cold signers: the coordinator's HSM attests a never-whitelisted destination as whitelisted
    three days ago; the signers never saw the entry and refuse (whitelist.unlisted). Legit: the client's
    entry reaches the signers, the lock is waited out, and the batch is signed."""
    site.funded_client("ursula", 50_000_000)
    coordinator, now = site.coordinator, _now()
    request = site.desk.request("ursula", "BTC", 20_000_000, DEST, now=now).request
    rogue = dataclasses.replace(request, destination=ROGUE, nonce="ab" * 16)
    decision = Decision(rogue.digest(), coordinator.policy.active_policy().hash, True, False, Route.COLD,
                        ApprovalRequirement(), ApprovalRequirement(), ())
    forged = attest_decision(coordinator.hsm, rogue, decision, (), AttestedFacts(False, int(now.timestamp()) - 3 * 86400, 0),
                             now_s=int(now.timestamp()))
    from coffer.cold.guards import payment_for

    coordinator.cold.enqueue(rogue.digest_hex, None, ROGUE, rogue.amount_minor, payment_for(rogue, forged.to_json()),
                             now=now)
    batch_id = coordinator.cold.seal_batch(now=now)
    assert batch_id is not None
    with pytest.raises(SignerRefused) as refused:
        coordinator.cold.sign_batch(batch_id, now=now)
    assert "whitelist.unlisted" == refused.value.rule
    coordinator.cold.abandon_batch(batch_id, "refused by the signers", now=now, requeue=False)
    site.desk.approve(sign_approval(APPROVER, request=request, operator_id="bob", role=Role.APPROVER,
                                    expires_at_s=int(now.timestamp()) + 600), now=now)
    site.desk.dispatch(request.digest_hex, now=now)
    result = coordinator.cold.run_once(now=_now())
    assert result["sealed"] and result["broadcast"]
    assert 30_000_000 == coordinator.ledger.balance(AccountKey.available("ursula", "BTC"))


def test_steered_draw_is_refused(site: ColdSite) -> None:
    """Attack 6 (catalogue #13): steer the cold quorum by excluding signers that never timed out, by
    redrawing past the bound, by an old tip, by invented headers, and by re-batching the same transaction;
    each is refused by the signer processes and nothing is signed. Legit: the batch is signed with the
    recorded draw and `coffer cold verify-draw` verifies it; a tampered draw record fails it."""
    coordinator = site.coordinator
    batch_id = _sealed(site, "steve", 9_000_000)
    honest = coordinator.cold.prepare_offline(batch_id, now=_now())  # draw recorded; bundle with headers
    draw = honest.draw
    outsider = next(s for s in draw.signer_ids if s not in draw.nominated)
    # 1. exclude a nominee that never timed out and pick a replacement by hand
    hand_picked = dataclasses.replace(draw, attempt=1, excluded=(draw.nominated[0],),
                                      timed_out=((draw.nominated[0],),),
                                      nominated=tuple(sorted(draw.nominated[1:] + (outsider,))))
    assert "draw.mismatch" == _refusal(site, outsider, dataclasses.replace(honest, draw=hand_picked))
    # 2. a time-out naming a signer the first attempt did not nominate
    not_nominated = dataclasses.replace(draw, attempt=1, excluded=(outsider,), timed_out=((outsider,),))
    assert "draw.mismatch" == _refusal(site, draw.nominated[0], dataclasses.replace(honest, draw=not_nominated))
    # 3. more redraws than the bound
    many = dataclasses.replace(draw, attempt=4, timed_out=((draw.nominated[0],),) * 4)
    assert "draw.attempts" == _refusal(site, outsider, dataclasses.replace(honest, draw=many))
    # 4. an invented header chain off genesis (valid regtest proof of work, far less work than the real tip)
    invented, fake, nominee = _steered(draw, lambda salt: mine_headers(3, salt=salt))
    _learn_tip(site, nominee, honest)
    assert "draw.tip_stale" == _refusal(site, nominee, dataclasses.replace(honest, draw=fake, headers=invented))
    # 5. a header whose proof of work fails, and a tip that links to nothing the signer knows
    broken = dataclasses.replace(honest, draw=fake, headers=(*invented[:-1], _without_work(invented[-1])))
    assert "draw.tip_invalid" == _refusal(site, nominee, broken)
    orphan, lost, stranger = _steered(draw, lambda salt: mine_headers(2, prev_hash="77" * 32, salt=salt))
    assert "draw.tip_unlinked" == _refusal(site, stranger, dataclasses.replace(honest, draw=lost, headers=orphan))
    # 6. an older tip of the real chain
    chain = coordinator.bitcoin
    tip_height = chain.block(draw.tip_hash).height

    def older(salt: bytes) -> list[bytes]:
        height = tip_height - 2 - salt[0] % 8
        return [chain.raw_block(chain.block_hash(h))[:80] for h in range(1, height + 1)]

    old_headers, old, late = _steered(draw, older)
    _learn_tip(site, late, honest)
    assert "draw.tip_stale" == _refusal(site, late, dataclasses.replace(honest, draw=old, headers=old_headers))
    # 7. the same transaction under another batch id (to re-grind the seed) once a signer answered it
    regrind = dataclasses.replace(honest, batch_id=batch_id + "-again",
                                  draw=draw_quorum(batch_id=batch_id + "-again", tip_hash=draw.tip_hash,
                                                   unsigned_txid=draw.unsigned_txid, signer_ids=draw.signer_ids,
                                                   threshold=draw.threshold))
    answered = draw.nominated[0]
    _client(site, answered).sign(honest)  # the legitimate answer of a nominee
    assert "draw.rebatched" == _refusal(site, answered, regrind)
    # legit: the recorded draw is signed by its nominees and verify-draw verifies it
    raw = coordinator.cold.sign_batch(batch_id, now=_now())
    assert raw and 1 == len(coordinator.cold.draws(batch_id))
    coordinator.cold.broadcast_batch(batch_id, now=_now())
    checked = _verify_draw_cli(site, batch_id)
    assert 0 == checked.returncode, checked.stdout + checked.stderr
    assert [True] == [json.loads(line)["verified"] for line in checked.stdout.splitlines() if line.startswith("{")]
    with coordinator.engine.begin() as conn:  # the attacker rewrites the recorded draw
        conn.execute(cold_draws.update().where(cold_draws.c.batch_id == batch_id).values(
            draw=json.dumps(hand_picked.as_dict())))
    tampered = _verify_draw_cli(site, batch_id)
    assert 1 == tampered.returncode
    assert "attempts are not 0" in tampered.stdout


def _learn_tip(site: ColdSite, signer_id: int, honest: SigningBundle) -> None:
    """Let a signer see the real tip first, as it does when it signs any batch (an unnominated signer
    judges the draw and refuses, but keeps the headers it verified)."""
    if signer_id in honest.draw.nominated:
        return
    with pytest.raises(SignerRefused):
        _client(site, signer_id).sign(honest)


def _steered(draw: Draw, headers_for: Callable[[bytes], list[bytes]]) -> tuple[tuple[bytes, ...], Draw, int]:
    """The attacker's draw over another tip, ground until it nominates a signer the honest draw left out."""
    from coffer.cold.tip import check_headers

    for salt in range(256):
        headers = tuple(headers_for(bytes([salt])))
        tip = check_headers(headers, network="regtest")[-1].block_hash
        steered = draw_quorum(batch_id=draw.batch_id, tip_hash=tip, unsigned_txid=draw.unsigned_txid,
                              signer_ids=draw.signer_ids, threshold=draw.threshold)
        wanted = [s for s in steered.nominated if s not in draw.nominated]
        if wanted:
            return headers, steered, wanted[0]
    raise AssertionError("no steered draw found")


def _without_work(header: bytes) -> bytes:
    """The same header with a nonce whose hash misses the regtest target."""
    import hashlib

    from coffer.cold.tip import GENESIS

    for nonce in range(1 << 16):
        raw = header[:76] + nonce.to_bytes(4, "little")
        if int.from_bytes(hashlib.sha256(hashlib.sha256(raw).digest()).digest(), "little") > GENESIS["regtest"][2]:
            return raw
    raise AssertionError("no failing nonce")
