"""Attack 5 of issue 16: the facts a co-signer relies on are its own.

The attacker holds the coordinator's whole home, its HSM PIN included, so it can attest any
"facts" it likes. The FROST co-signers run as real processes; each keeps its own record of when
it first saw a whitelist entry and which accounts are frozen, and judges by that. Each attack is
followed by the legitimate version, which must succeed.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from embit import ec, script
from embit.networks import NETWORKS

from coffer.chain.regtest import RegtestChain
from coffer.hot import HotWallet
from coffer.keyholder.facts import (
    ClientKeyNotice,
    FreezeNotice,
    UnfreezeAction,
    WhitelistNotice,
    sign_unfreeze,
    sign_whitelist_entry,
)
from coffer.ledger import Ledger
from coffer.mpc.service import CosignerRefused
from coffer.mpc.service.harness import Cluster, start_cluster
from coffer.policy import (
    ApprovalRequirement,
    AttestedFacts,
    Decision,
    OperatorKey,
    Route,
    SignedDecision,
    WithdrawalRequest,
    attest_decision,
)
from coffer.policy.versions import AdminSignature
from coffer.testing.facts import announce
from coffer.testing.faucet import Faucet
from tests.hot.test_hot_wallet import Env, _now

COSIGNERS = (1, 2, 3)


def _fresh_address() -> str:
    key = ec.PrivateKey(secrets.token_bytes(32))
    return script.p2wpkh(key.get_public_key()).address(NETWORKS["regtest"])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    home = Path(tmp_path_factory.mktemp("facts-home"))
    cluster = start_cluster(home, COSIGNERS)
    chain = RegtestChain.open(home / "chain")
    try:
        cluster.mpc.dkg("hot-btc", "taproot", 2)
        ledger = Ledger(cluster.engine)
        ledger.open_house_accounts(["BTC"], at=_now())
        faucet = Faucet(chain)
        faucet.fund()
        wallet = HotWallet(cluster.engine, chain, ledger, cluster.mpc, key_id="hot-btc", confirmations=1)
        for _ in range(8):  # a refused payment keeps its coin reserved: one coin per attempt
            txid = faucet.pay(wallet.address(), 400_000)
            chain.mine(1)
            wallet.record_refill(txid, 400_000, now=_now())
        yield Env(cluster, chain, faucet, ledger, wallet)
    finally:
        chain.close()
        cluster.stop()


def _senders(cluster: Cluster) -> list:  # type: ignore[type-arg]
    return [lambda document, c=cosigner: cluster.client(c).call("/v1/facts", document) for cosigner in COSIGNERS]


def _forged(cluster: Cluster, request: WithdrawalRequest, *, frozen: bool = False) -> SignedDecision:
    """What the attacker's HSM signs: allowed, with a destination 'whitelisted three days ago'."""
    now_s = int(_now().timestamp())
    assert cluster.policy is not None
    decision = Decision(request.digest(), cluster.policy.hash, True, False, Route.HOT, ApprovalRequirement(),
                        ApprovalRequirement(), ())
    return attest_decision(cluster.hsm, request, decision, (), AttestedFacts(frozen, now_s - 3 * 86400, 10**9),
                           now_s=now_s)


def _refused(env: Env, request: WithdrawalRequest, attestation: SignedDecision) -> str:
    with pytest.raises(CosignerRefused) as refused:
        env.wallet.pay(request, attestation, client_id=None, now=_now())
    payment = env.wallet.payment(request.digest_hex)
    assert payment is None or "built" == payment.status  # nothing signed, nothing broadcast
    return refused.value.rule


def _paid(env: Env, request: WithdrawalRequest) -> None:
    payment = env.wallet.pay(request, env.cluster.attest(request), client_id=None, now=_now())
    assert "broadcast" == payment.status
    env.chain.mine(1)
    assert 1 == env.chain.confirmations(payment.txid)


def test_never_whitelisted_destination_with_attested_age_is_refused(env: Env) -> None:
    """Attack: the coordinator's HSM attests a never-whitelisted address as whitelisted 3 days ago; the
    co-signers never saw it and refuse (whitelist.unlisted). Legit: announced, lock waited out, paid."""
    request = env.cluster.request(_fresh_address(), 40_000)
    assert "whitelist.unlisted" == _refused(env, request, _forged(env.cluster, request))
    _paid(env, env.cluster.request(request.destination, 40_000))


def test_fresh_entry_cannot_be_backdated(env: Env) -> None:
    """Attack: announce an entry and at once attest it as three days old; the lock runs from each
    co-signer's own first sighting (whitelist.time_lock). Legit: wait the lock out, then it pays."""
    request = env.cluster.request(_fresh_address(), 30_000)
    replies = announce(_senders(env.cluster), [WhitelistNotice(request.account, "BTC", request.destination)])
    assert all(reply["observed"][0]["first_seen_s"] >= int(_now().timestamp()) - 60 for reply in replies)
    assert "whitelist.time_lock" == _refused(env, request, _forged(env.cluster, request))
    _paid(env, env.cluster.request(request.destination, 30_000))


def test_freeze_from_any_notice_and_unfreeze_only_with_the_admin_quorum(env: Env) -> None:
    """Attack: the attester says 'not frozen' after a freeze notice, and lifts the freeze with a made-up or a
    single admin's signature; refused (freeze, governance.quorum), and a used unfreeze can't be replayed.
    Legit: two admins sign the unfreeze and the payment goes through."""
    cluster = env.cluster
    destination = _fresh_address()
    cluster.whitelist(cluster.request(destination, 1, account="frida"))
    announce(_senders(cluster), [FreezeNotice("frida")])
    request = cluster.request(destination, 20_000, account="frida")
    assert "freeze" == _refused(env, request, _forged(cluster, request))
    expires = int(_now().timestamp()) + 600
    nonce = secrets.token_hex(16)
    pam, pat = cluster.operator_keys["pam"], cluster.operator_keys["pat"]
    forgeries = [
        (),
        (AdminSignature("mallory", OperatorKey(b"\x66" * 32).sign(b"x" * 32)),),
        (sign_unfreeze(pam, "pam", "frida", nonce, expires),),
        (sign_unfreeze(pam, "pam", "frida", nonce, expires), sign_unfreeze(pam, "pat", "frida", nonce, expires)),
    ]
    for signatures in forgeries:
        with pytest.raises(CosignerRefused) as refused:
            announce(_senders(cluster), [UnfreezeAction("frida", nonce, expires, signatures)])
        assert "governance.quorum" == refused.value.rule
    assert "freeze" == _refused(env, request, cluster.attest(request))
    quorum = (sign_unfreeze(pam, "pam", "frida", nonce, expires), sign_unfreeze(pat, "pat", "frida", nonce, expires))
    replies = announce(_senders(cluster), [UnfreezeAction("frida", nonce, expires, quorum)])
    assert [["pam", "pat"]] * len(COSIGNERS) == [reply["observed"][0]["signed_by"] for reply in replies]
    _paid(env, cluster.request(destination, 20_000, account="frida"))
    announce(_senders(cluster), [FreezeNotice("frida")])
    with pytest.raises(CosignerRefused) as replayed:
        announce(_senders(cluster), [UnfreezeAction("frida", nonce, expires, quorum)])
    assert "unfreeze.replayed" == replayed.value.rule


def test_client_signed_entry_needs_the_clients_own_pinned_key(env: Env) -> None:
    """Attack: an entry 'signed' with a key the client never enrolled, a forged signature, and a second key
    slipped in beside the client's own; refused. Legit: the client's enrolled key signs, the entry is taken
    as client-signed."""
    cluster = env.cluster
    client = OperatorKey(secrets.token_bytes(32))
    attacker = OperatorKey(secrets.token_bytes(32))
    destination = _fresh_address()
    with pytest.raises(CosignerRefused) as unknown:
        announce(_senders(cluster), [sign_whitelist_entry(attacker, "gwen", "BTC", destination)])
    assert "whitelist.client_key_unknown" == unknown.value.rule
    announce(_senders(cluster), [ClientKeyNotice("gwen", client.public_key)])
    with pytest.raises(CosignerRefused) as second:
        announce(_senders(cluster), [ClientKeyNotice("gwen", attacker.public_key)])
    assert "client_key.not_endorsed" == second.value.rule
    forged = sign_whitelist_entry(client, "gwen", "BTC", destination)
    tampered = WhitelistNotice("gwen", "BTC", _fresh_address(), forged.client_public_key, forged.client_signature)
    with pytest.raises(CosignerRefused) as bad:
        announce(_senders(cluster), [tampered])
    assert "whitelist.client_signature" == bad.value.rule
    replies = announce(_senders(cluster), [forged])
    assert [True] * len(COSIGNERS) == [reply["observed"][0]["client_signed"] for reply in replies]
