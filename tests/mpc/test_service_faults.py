"""Issue 13's fault and crash suites for the MPC co-signers: messages between the coordinator and
real co-signer processes (mutual TLS) are dropped, duplicated, delayed and reordered, and co-signers
are killed -9 at many points of DKG, refresh, re-share and hot-key signing. Every run either
completes correctly or fails with a typed error; afterwards a fresh session signs under the
unchanged group key and no nonce was ever used twice."""

from __future__ import annotations

import random
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import coincurve
import pytest
from nacl.signing import VerifyKey

from coffer.btc.bip322_sign import p2tr_sighash
from coffer.canonical import canonical_json
from coffer.mpc.errors import MpcError
from coffer.mpc.service import (
    CosignerUnavailable,
    MpcCoordinator,
    ProtocolViolation,
    SessionReplayed,
    UnknownKey,
)
from coffer.mpc.service import messages as msg
from coffer.mpc.service.harness import Cluster, start_cluster
from coffer.mpc.service.server import cosigner_dir
from coffer.por.verify import reserves_challenge
from tests.mpc.faulty_network import (
    CRASH_AFTER,
    CRASH_BEFORE,
    DELAY,
    DROP_REPLY,
    DROP_REQUEST,
    DUPLICATE,
    REORDER,
    SWAP_REPLIES,
    Fault,
    FaultyClient,
    NonceLog,
    refused_copies,
)

COSIGNERS = (1, 2, 3)
THRESHOLD = 2
STATEMENT = b"coffer-por-statement/1\n" + canonical_json({"asset": "BTC", "height": 7, "solvent": True})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = start_cluster(Path(tmp_path_factory.mktemp("mpc-faults")), COSIGNERS)
    try:
        started.mpc.dkg("pub", "ed25519", THRESHOLD)
        started.mpc.dkg("hot", "taproot", THRESHOLD)
        yield started
    finally:
        started.stop()


@dataclass
class Net:
    cluster: Cluster
    mpc: MpcCoordinator
    clients: dict[int, FaultyClient]
    nonces: NonceLog

    def fault(self, cosigner: int, path: str, action: str, **options: Any) -> Fault:
        return self.clients[cosigner].add(Fault(path, action, **options))

    def crash(self, cosigner: int, path: str, action: str) -> Fault:
        return self.fault(cosigner, path, action, hook=self.cluster.processes[cosigner].kill)


@pytest.fixture
def net(cluster: Cluster) -> Iterator[Net]:
    nonces = NonceLog()
    clients = {c: FaultyClient(cluster.client(c), nonces) for c in COSIGNERS}
    mpc = MpcCoordinator(cluster.engine, clients, approve=cluster.quorum.approve)
    try:
        yield Net(cluster, mpc, clients, nonces)
        nonces.check()
    finally:
        mpc.close()
        for cosigner, process in cluster.processes.items():  # no test leaves a co-signer dead
            if not process.alive():
                cluster.processes[cosigner] = process.start()


# -- helpers ------------------------------------------------------------------------------------------
def sign_pub(net: Net, cosigners: list[int], key_id: str = "pub") -> None:
    """An Ed25519 publication signature that libsodium verifies under the directory's group key."""
    signature = net.mpc.sign_publication(key_id, STATEMENT, net.cluster.attest_publication(STATEMENT),
                                         cosigners=cosigners)
    VerifyKey(net.mpc.key(key_id).publication_public_key()).verify(STATEMENT, signature)


def sign_hot(net: Net, cosigners: list[int], key_id: str = "hot") -> None:
    """A BIP-340 signature by the Taproot (hot wallet) key that libsecp256k1 verifies."""
    key = net.mpc.key(key_id)
    output_key, tweaks = msg.taproot_key(key.public)
    message = reserves_challenge("BTC", "regtest", secrets.randbelow(10**6), secrets.token_hex(32))
    digest = p2tr_sighash(output_key, message)
    signature = net.mpc.sign_session(key, "reserves_proof", {"message": message.hex()}, [digest], tweaks,
                                     cosigners=cosigners)[0]
    assert coincurve.PublicKeyXOnly(output_key).verify(signature, digest)


def sign(net: Net, key_id: str, cosigners: list[int]) -> None:
    (sign_hot if net.mpc.key(key_id).suite == "taproot" else sign_pub)(net, cosigners, key_id)


def sign_with_every_member(net: Net, key_id: str) -> None:
    members = [m.cosigner for m in net.mpc.key(key_id).members]
    for start in range(0, len(members), THRESHOLD):
        window = members[start: start + THRESHOLD]
        sign(net, key_id, window if len(window) == THRESHOLD else members[-THRESHOLD:])


def group_key(cluster: Cluster, key_id: str) -> bytes:
    return cluster.mpc._load(key_id).group_public_key


def shares_at(cluster: Cluster, cosigner: int, key_id: str) -> list[tuple[int, str, bool]]:
    """(version, status, still sealed) of every share the co-signer's database holds for the key."""
    with sqlite3.connect(cosigner_dir(cluster.home, cosigner) / "cosigner.db") as db:
        return [(int(v), s, sealed is not None) for v, s, sealed in db.execute(
            "SELECT version, status, sealed FROM shares WHERE key_id = ? ORDER BY version", (key_id,))]


def run_concurrently(*calls: Callable[[], None]) -> list[BaseException | None]:
    outcome: list[BaseException | None] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            calls[index]()
        except BaseException as error:
            outcome[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcome


def new_key(net: Net, suite: str = "ed25519") -> str:
    key_id = f"k-{secrets.token_hex(4)}"
    net.cluster.mpc.dkg(key_id, suite, THRESHOLD)
    return key_id


# -- dropped messages -----------------------------------------------------------------------------------
def test_dropped_round_one_request_and_reply_fail_typed(net: Net) -> None:
    """A lost commit request, or a lost commit reply, fails the session with CosignerUnavailable; a fresh one signs."""
    before = group_key(net.cluster, "pub")
    net.fault(2, "/v1/sign/commit", DROP_REQUEST)
    with pytest.raises(CosignerUnavailable) as lost:
        sign_pub(net, [1, 2])
    assert 2 == lost.value.cosigner
    net.fault(1, "/v1/sign/commit", DROP_REPLY)
    with pytest.raises(CosignerUnavailable):
        sign_pub(net, [1, 2])
    sign_pub(net, [1, 2])
    assert before == group_key(net.cluster, "pub")


def test_dropped_round_two_reply_spends_the_nonce_once(net: Net) -> None:
    """A lost round-two reply fails the session; re-sending that request is refused (its nonce is spent); a fresh session signs."""
    dropped = net.fault(3, "/v1/sign/share", DROP_REPLY)
    with pytest.raises(CosignerUnavailable):
        sign_hot(net, [2, 3])
    with pytest.raises(SessionReplayed):
        net.cluster.client(3).call("/v1/sign/share", dropped.seen[0])
    sign_hot(net, [2, 3])


def test_dropped_round_two_request_fails_typed(net: Net) -> None:
    """A round-two request that never arrives fails the session cleanly; the next session signs with the same co-signers."""
    net.fault(1, "/v1/sign/share", DROP_REQUEST)
    with pytest.raises(CosignerUnavailable):
        sign_pub(net, [1, 3])
    sign_pub(net, [1, 3])


def test_dropped_dkg_message_leaves_no_key(net: Net) -> None:
    """A DKG whose last message to one co-signer is lost fails typed and is not recorded; a fresh DKG works."""
    net.fault(3, "/v1/dkg/finalize", DROP_REQUEST)
    with pytest.raises(CosignerUnavailable):
        net.mpc.dkg("dropped-dkg", "taproot", THRESHOLD)
    with pytest.raises(UnknownKey):
        net.mpc.key("dropped-dkg")
    net.mpc.dkg("after-dropped-dkg", "taproot", THRESHOLD)
    sign_with_every_member(net, "after-dropped-dkg")


def test_dropped_dealing_keeps_the_old_shares_and_a_later_refresh_works(net: Net) -> None:
    """A refresh whose dealing never reaches one co-signer fails; the old shares still sign; the next refresh succeeds."""
    key_id = new_key(net)
    before = net.mpc.key(key_id)
    net.fault(3, "/v1/dealing/receive", DROP_REQUEST)
    with pytest.raises(CosignerUnavailable):
        net.mpc.refresh(key_id)
    assert before.version == net.mpc.key(key_id).version
    for cosigner in COSIGNERS:
        assert (before.version, "active", True) in shares_at(net.cluster, cosigner, key_id)
    sign_with_every_member(net, key_id)
    after = net.mpc.refresh(key_id)
    assert before.group_public_key == after.group_public_key
    sign_with_every_member(net, key_id)


def test_dropped_confirm_reply_is_recovered_by_resync(net: Net) -> None:
    """A refresh whose final reply is lost fails typed; resync adopts the new version; the group key is unchanged."""
    key_id = new_key(net, "taproot")
    before = net.mpc.key(key_id)
    net.fault(1, "/v1/dealing/confirm", DROP_REPLY)
    with pytest.raises(CosignerUnavailable):
        net.mpc.refresh(key_id)
    after = net.mpc.resync(key_id)
    assert before.version + 1 == after.version
    assert before.group_public_key == after.group_public_key
    sign_with_every_member(net, key_id)


# -- duplicated messages ---------------------------------------------------------------------------------
def test_duplicated_round_two_request_gives_one_share(net: Net) -> None:
    """A round-two request delivered twice yields one signature share; the co-signer refuses the copy (no nonce reuse)."""
    copied = net.fault(2, "/v1/sign/share", DUPLICATE)
    sign_pub(net, [1, 2])
    assert 1 == len(copied.duplicate_replies)
    assert [SessionReplayed] == [type(e) for e in copied.duplicate_errors]
    assert 1 == sum(1 for cosigner, _ in net.nonces.signed if cosigner == 2)


def test_duplicated_round_one_request_opens_one_session(net: Net) -> None:
    """A commit request delivered twice opens the session once; the copy is refused as a replay; the session signs."""
    copied = net.fault(1, "/v1/sign/commit", DUPLICATE)
    sign_hot(net, [1, 3])
    assert [SessionReplayed] == [type(e) for e in copied.duplicate_errors]


def test_duplicated_dkg_and_dealing_messages_are_refused_once(net: Net) -> None:
    """Duplicated DKG and refresh messages are refused as replays; the DKG and the refresh complete; the key is unchanged."""
    step2 = net.fault(2, "/v1/dkg/step2", DUPLICATE)
    key_id = f"dup-{secrets.token_hex(3)}"
    net.mpc.dkg(key_id, "ed25519", THRESHOLD)
    assert 1 == len(refused_copies(step2))
    before = net.mpc.key(key_id)
    copies = [net.fault(1, "/v1/refresh/deal", DUPLICATE), net.fault(3, "/v1/dealing/receive", DUPLICATE),
              net.fault(2, "/v1/dealing/confirm", DUPLICATE)]
    after = net.mpc.refresh(key_id)
    assert [1, 1, 1] == [len(refused_copies(c)) for c in copies]
    assert before.group_public_key == after.group_public_key
    sign_with_every_member(net, key_id)


# -- delayed and reordered messages ---------------------------------------------------------------------
def test_delayed_messages_complete(net: Net) -> None:
    """Round-two and dealing messages held back for a while still complete the session and the re-share."""
    net.fault(3, "/v1/sign/share", DELAY, delay_s=1.5)
    sign_pub(net, [2, 3])
    key_id = new_key(net, "taproot")
    before = net.mpc.key(key_id)
    net.fault(1, "/v1/dealing/receive", DELAY, delay_s=1.0)
    net.fault(3, "/v1/sign/commit", DELAY, delay_s=0.5)
    after = net.mpc.reshare(key_id)
    assert before.group_public_key == after.group_public_key
    sign_with_every_member(net, key_id)


def test_reordered_round_two_requests_of_concurrent_sessions(net: Net) -> None:
    """Two sessions' round-two requests arriving in the opposite order both sign correctly."""
    reorder = net.fault(1, "/v1/sign/share", REORDER, times=2)
    outcome = run_concurrently(lambda: sign_pub(net, [1, 2]), lambda: sign_pub(net, [1, 3]))
    assert [None, None] == outcome
    assert 2 == len(reorder.seen)


def test_swapped_round_one_replies_fail_typed(net: Net) -> None:
    """Round-one replies delivered to the wrong session are refused (ProtocolViolation naming the co-signer); a fresh session signs."""
    net.fault(2, "/v1/sign/commit", SWAP_REPLIES, times=2)
    outcome = run_concurrently(lambda: sign_hot(net, [1, 2]), lambda: sign_hot(net, [2, 3]))
    for error in outcome:
        assert isinstance(error, ProtocolViolation), outcome
        assert 2 == error.sender
    sign_hot(net, [1, 2])


# -- crashes (kill -9) ---------------------------------------------------------------------------------
OPERATIONS: dict[str, tuple[str, ...]] = {
    "dkg": ("/v1/hostkey", "/v1/dkg/step1", "/v1/dkg/step2", "/v1/dkg/finalize"),
    "refresh": ("/v1/refresh/deal", "/v1/dealing/receive", "/v1/sign/commit", "/v1/sign/share",
                "/v1/dealing/confirm"),
    "reshare": ("/v1/reshare/deal", "/v1/dealing/receive", "/v1/sign/commit", "/v1/sign/share",
                "/v1/dealing/confirm"),
    "sign": ("/v1/sign/commit", "/v1/sign/share"),
}


def crash_point(net: Net, operation: str, path: str, when: str, victim: int, suite: str) -> None:
    """Kill -9 `victim` just before or after `path` during `operation`, restart it, and check recovery."""
    cluster = net.cluster
    key_id = new_key(net, suite) if operation in ("refresh", "reshare", "sign") else f"c-{secrets.token_hex(4)}"
    before = group_key(cluster, key_id) if operation != "dkg" else None
    old_version = net.mpc.key(key_id).version if before is not None else 0
    crash = net.crash(victim, path, when)
    try:
        if operation == "dkg":
            net.mpc.dkg(key_id, suite, THRESHOLD)
        elif operation == "refresh":
            net.mpc.refresh(key_id)
        elif operation == "reshare":
            net.mpc.reshare(key_id)
        else:
            sign(net, key_id, [c for c in COSIGNERS if c != victim][:1] + [victim])
    except MpcError:
        pass
    assert 1 == crash.fired, f"{path} was never sent to co-signer {victim}"
    assert not cluster.processes[victim].alive()
    cluster.processes[victim] = cluster.processes[victim].start()
    if operation == "dkg":
        net.mpc.dkg(key_id + "-again", suite, THRESHOLD)  # a fresh DKG with the restarted co-signer
        sign_with_every_member(net, key_id + "-again")
        sign(net, "hot", [victim, victim % 3 + 1])  # older keys are untouched
        return
    key = net.mpc.resync(key_id)
    assert before == key.group_public_key
    assert key.version in (old_version, old_version + 1)
    assert victim in [m.cosigner for m in key.members] or victim in key.revoked
    sign_with_every_member(net, key_id)
    held = shares_at(cluster, victim, key_id)
    if victim in [m.cosigner for m in key.members]:
        assert (key.version, "active", True) in held, held
    elif victim in key.revoked:  # it never saw the test signature: its old share was kept
        assert (old_version, "active", True) in held, held


SAMPLE = [("dkg", "/v1/dkg/step2", CRASH_BEFORE, 2, "taproot"),
          ("refresh", "/v1/dealing/receive", CRASH_AFTER, 3, "ed25519"),
          ("refresh", "/v1/dealing/confirm", CRASH_BEFORE, 1, "taproot"),
          ("reshare", "/v1/sign/share", CRASH_AFTER, 2, "ed25519"),
          ("sign", "/v1/sign/share", CRASH_AFTER, 3, "taproot")]


@pytest.mark.parametrize(("operation", "path", "when", "victim", "suite"), SAMPLE,
                         ids=[f"{o}-{p.rsplit('/', 1)[1]}-{w}-{v}" for o, p, w, v, _ in SAMPLE])
def test_crash_point(net: Net, operation: str, path: str, when: str, victim: int, suite: str) -> None:
    """A co-signer killed -9 at this point fails the operation typed; after restart the key signs under the same group key."""
    crash_point(net, operation, path, when, victim, suite)


RANDOM_POINTS = 20


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(RANDOM_POINTS))
def test_random_crash_point(net: Net, seed: int) -> None:
    """A co-signer killed -9 at a random point of DKG, refresh, re-share or hot signing: recovery as above."""
    rng = random.Random(seed)
    operation = rng.choice(sorted(OPERATIONS))
    crash_point(net, operation, rng.choice(OPERATIONS[operation]), rng.choice([CRASH_BEFORE, CRASH_AFTER]),
                rng.choice(COSIGNERS), rng.choice(["taproot", "ed25519"]))
