"""Benchmark: liabilities Merkle sum tree for 10,000,000 accounts; inclusion-proof size and verify time.

Targets: build <= 60 s, proof <= 2 KB, verify <= 5 ms. Baseline measured in the same run: a plain
Merkle tree (SHA-256 of 64-byte pairs, no sums, no HMAC leaves) over 1,000,000 leaves, scaled to
the same leaf count. Usage: .venv/bin/python bench/por.py [accounts]
Last line: por_build_10m_s=<B> proof_bytes=<P> verify_ms=<V>
"""

from __future__ import annotations

import hashlib
import os
import resource
import statistics
import sys
import time

import numpy as np

from coffer.por.liabilities import build_liabilities_tree_arrays
from coffer.por.verify import parse_inclusion_proof, serialize_inclusion_proof, verify_inclusion

WORKERS = int(os.environ.get("POR_BENCH_WORKERS", "2"))


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def plain_merkle_seconds(leaf_count: int) -> float:
    level = os.urandom(32 * leaf_count)
    started = time.perf_counter()
    sha256 = hashlib.sha256
    while len(level) > 32:
        view = memoryview(level)
        level = b"".join([sha256(view[64 * i:64 * i + 64]).digest() for i in range(len(level) // 64)])
    return time.perf_counter() - started


def main() -> None:
    accounts_count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    baseline_leaves = 1 << 20
    baseline_s = plain_merkle_seconds(baseline_leaves)
    accounts = np.arange(1, accounts_count + 1, dtype=np.uint64) * np.uint64(7)
    amounts = np.frombuffer(os.urandom(8 * accounts_count), dtype="<u8").astype(np.uint64) >> np.uint64(24)
    nonce_blob = os.urandom(32 * accounts_count)
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    tree = build_liabilities_tree_arrays("BTC", 900_000, accounts, amounts, nonce_blob, workers=WORKERS)
    build_s = time.perf_counter() - started
    build_cpu_s = _cpu_seconds() - cpu_before
    scaled_baseline_s = baseline_s * tree.leaf_count / baseline_leaves
    sample = np.random.default_rng(1).choice(accounts_count, size=200, replace=False)
    sizes, verify_ms = [], []
    published = tree.published_root()
    for slot in sample.tolist():
        account = int(accounts[slot])
        raw = serialize_inclusion_proof(tree.proof_for(account))
        nonce = nonce_blob[32 * slot:32 * slot + 32]
        started = time.perf_counter()
        verify_inclusion(parse_inclusion_proof(raw), nonce, published, expected_balance=int(amounts[slot]))
        verify_ms.append((time.perf_counter() - started) * 1000)
        sizes.append(len(raw))
    print(f"accounts={accounts_count} leaves={tree.leaf_count} depth={tree.depth} parts=2")
    print(f"build: {build_s:.1f} s   baseline plain Merkle (no sums, no HMAC) on {baseline_leaves} leaves: "
          f"{baseline_s:.2f} s, scaled to {tree.leaf_count} leaves: {scaled_baseline_s:.1f} s")
    print(f"build CPU time (this process and its {WORKERS} workers): {build_cpu_s:.1f} s; "
          f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"proof bytes: median {statistics.median(sizes):.0f}, max {max(sizes)} over {len(sizes)} clients")
    print(f"verify: median {statistics.median(verify_ms):.2f} ms, max {max(verify_ms):.2f} ms")
    print(f"por_build_10m_s={build_s:.1f} proof_bytes={max(sizes)} verify_ms={statistics.median(verify_ms):.2f}")


if __name__ == "__main__":
    main()
