"""FROST service benchmark: 3-of-5 signing with five `coffer cosigner` processes over mutual TLS
on loopback, beside an in-process 3-of-5 signing measured in the same run (the baseline: the
same FROST arithmetic with no processes, no network, no HSM, no policy checks, no fsync).

What each service signature costs: two rounds to three co-signers (commit, share), and in each
co-signer the document-type check, the P-256 attestation check, an HSM AES-GCM unseal of the
share, two durable SQLite commits (the session id, then "nonces used"), the FROST arithmetic;
then the coordinator's aggregation and verification. Connections stay open (a pool per
co-signer) and sessions run concurrently from many threads.

Printed: DKG 3-of-5 time (ChillDKG for the Taproot key, and the Ed25519 DKG), sequential p50 /
p90 latency of one publication signature (Ed25519), and signatures/s
with concurrent sessions.
Targets: p50 <= 20 ms, >= 200 signatures/s.
Last line: frost_sign_p50_ms=<L> frost_sign_per_s=<N> dkg_ms=<D>
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from coffer.canonical import canonical_json
from coffer.mpc import frost
from coffer.mpc.dkg import chilldkg, ed25519
from coffer.mpc.dkg.local import run_local_dkg
from coffer.mpc.frost.keys import group_by_name
from coffer.mpc.service import CosignerClient, MpcCoordinator
from coffer.mpc.service.harness import Cluster, start_cluster

DOCUMENT = b"coffer-por-statement/1\n" + canonical_json({"asset": "BTC", "height": 1, "solvent": True})
SIGNERS = [1, 3, 5]
# Concurrent sessions spread over every 3-subset of the five co-signers, as a coordinator would.
SIGNER_SETS = [list(c) for c in itertools.combinations(range(1, 6), 3)]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed_ms(function: Callable[[], object], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def in_process_baseline(rounds: int, taproot: bool) -> float:
    """p50 ms of an in-process 3-of-5 FROST signature: commit, sign, aggregate (which verifies)."""
    rng = random.Random(7)
    protocol = chilldkg if taproot else ed25519
    suite = frost.SECP256K1_TR if taproot else frost.ED25519
    outputs = run_local_dkg(protocol, [rng.randbytes(32) for _ in range(5)], 3, rng.randbytes)
    first = outputs.participant_outputs[0]
    public = frost.PublicKeyPackage.from_encoded(group_by_name(first.suite), first.threshold,
                                                 first.group_public_key, first.public_shares)
    keys = {o.secret_share.identifier: frost.KeyPackage(o.secret_share.identifier, o.secret_share.value, public)
            for o in outputs.participant_outputs if o.secret_share is not None}

    tweaks = frost.taproot_output_key(public)[1] if taproot else ()
    message = bytes(32) if taproot else DOCUMENT

    def once() -> None:
        nonces, commitments = {}, []
        for identifier in SIGNERS:
            nonce, commitment = frost.commit(suite, keys[identifier])
            nonces[identifier] = nonce
            commitments.append(commitment)
        package = frost.SigningPackage.create(commitments, message, tweaks)
        shares = {i: frost.sign(suite, keys[i], nonces[i], package, message=message, tweaks=tweaks) for i in SIGNERS}
        frost.aggregate(suite, public, package, shares)

    return statistics.median(timed_ms(once, rounds))


def taproot_spend(cluster: Cluster) -> Callable[[], object]:
    """A one-input spend of the hot key's P2TR output, approved once; re-signing the same
    transaction for the same request is what a co-signer allows (retry), so it can be repeated."""
    from embit.script import Script
    from embit.transaction import Transaction, TransactionInput, TransactionOutput

    from coffer.mpc.service.messages import Prevout, address_script, p2tr_address, p2tr_script

    key = cluster.mpc.key("hot-btc")
    own = p2tr_script(key.taproot_output_key())
    destination = p2tr_address(bytes(range(32)))
    request = cluster.request(destination, 100_000)
    decision = cluster.attest(request)
    tx = Transaction(version=2, vin=[TransactionInput(bytes(range(32)), 0, sequence=0xFFFFFFFD)],
                     vout=[TransactionOutput(100_000, Script(address_script(destination, "regtest"))),
                           TransactionOutput(899_000, Script(own))])
    raw, prevouts = bytes(tx.serialize()), [Prevout(1_000_000, own)]
    sets = itertools.cycle(SIGNER_SETS)
    return lambda: cluster.mpc.sign_taproot_spend("hot-btc", raw, prevouts, [(request, decision)],
                                                  cosigners=next(sets))


def throughput(sign: Callable[[], object], threads: int, seconds: float) -> float:
    done = [0] * threads
    errors: list[BaseException] = []
    stop = time.perf_counter() + seconds

    def worker(index: int) -> None:
        try:
            while time.perf_counter() < stop:
                sign()
                done[index] += 1
        except BaseException as error:  # report, don't hang the run
            errors.append(error)

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    if errors:
        raise errors[0]
    return sum(done) / (time.perf_counter() - start)


def measure(sign: Callable[[], object], rounds: int, threads: int, seconds: float) -> tuple[list[float], float]:
    for _ in range(20):  # warm the connection pools and the co-signers' caches
        sign()
    samples = timed_ms(sign, rounds)
    return samples, throughput(sign, threads, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    # 32 concurrent sessions: enough for request batching to carry several calls per HTTP request
    # and per fsync (what the coordinator's pipelining is for); --threads 16 for the earlier figure.
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    base_tr = in_process_baseline(max(20, args.rounds // 4), taproot=True)
    base_ed = in_process_baseline(max(20, args.rounds // 4), taproot=False)
    local_dkg_ms = statistics.median(timed_ms(lambda: run_local_dkg(
        chilldkg, [bytes([i + 1]) * 32 for i in range(5)], 3, os.urandom), 3))
    with tempfile.TemporaryDirectory(prefix="coffer-bench-frost-") as home:
        cluster = start_cluster(Path(home), notice_max_age_s=30)
        try:
            start = time.perf_counter()
            cluster.mpc.dkg("hot-btc", "taproot", 3)
            dkg_ms = (time.perf_counter() - start) * 1000.0
            start = time.perf_counter()
            cluster.mpc.dkg("publication", "ed25519", 3)
            dkg_ed_ms = (time.perf_counter() - start) * 1000.0
            attestation = cluster.attest_publication(DOCUMENT)
            tr_samples, tr_per_s = measure(taproot_spend(cluster), args.rounds, args.threads, args.seconds)
            unbatched = MpcCoordinator(cluster.engine, {c: CosignerClient(c, cluster.ports[c], cluster.tls,
                                                                          batching=False) for c in cluster.ports})
            plain_mpc, cluster.mpc = cluster.mpc, unbatched
            try:
                tr_plain_per_s = throughput(taproot_spend(cluster), args.threads, args.seconds)
            finally:
                cluster.mpc = plain_mpc
                unbatched.close()
            sets = itertools.cycle(SIGNER_SETS)
            ed_samples, ed_per_s = measure(lambda: cluster.mpc.sign_publication(
                "publication", DOCUMENT, attestation, cosigners=next(sets)), args.rounds, args.threads, args.seconds)
        finally:
            cluster.stop()
    print(f"dkg 3-of-5 over mTLS, ChillDKG secp256k1 (Taproot key): {dkg_ms:8.1f} ms"
          f"   baseline in-process ChillDKG session: {local_dkg_ms:6.1f} ms")
    print(f"dkg 3-of-5 over mTLS, Ed25519:                          {dkg_ed_ms:8.1f} ms")
    for name, samples, per_s, base in (("Taproot spend (BIP-340)", tr_samples, tr_per_s, base_tr),
                                       ("Ed25519 publication   ", ed_samples, ed_per_s, base_ed)):
        print(f"sign 3-of-5 {name} p50 {statistics.median(samples):6.2f} ms  p90 {percentile(samples, 0.9):6.2f} ms"
              f"  | {args.threads} concurrent sessions {per_s:6.1f} sig/s"
              f"  | baseline in-process p50 {base:5.2f} ms = {1000.0 / base:6.1f} sig/s on one core")
    print(f"Taproot, {args.threads} concurrent sessions without request batching (one HTTP request per call):"
          f" {tr_plain_per_s:6.1f} sig/s")
    print("targets: p50 <= 20 ms, >= 200 signatures/s (figures below: the Taproot hot-wallet path)")
    print(f"frost_sign_p50_ms={statistics.median(tr_samples):.2f} frost_sign_per_s={tr_per_s:.1f} dkg_ms={dkg_ms:.1f}")


if __name__ == "__main__":
    main()
