"""Benchmark: proof of liabilities from a ledger snapshot in PostgreSQL to every published file
written, beside a BitMEX-style baseline doing the same job on the same accounts in the same run.

Set-up (not timed): a PostgreSQL (the test harness's server), N clients opened in bulk (the rows
`Ledger.open_client` writes), each funded by a real deposit transfer (`Ledger.apply_batches`),
each with its lifetime account nonce stored (as at account opening), and a signed BTC reserves
document whose balances cover the liabilities.

Timed (Coffer): the production command, `coffer por publish --home H --reserves ... --signing-key
... --log ... --proofs-dir P --out S` as its own process, reading the liabilities from the
ledger in PostgreSQL: ledger read, nonce load, tree build, statement signed and appended to the
log, and every file written: the BitMEX liabilities tree file, the reserves JSON and BitMEX
reserves YAML, the statement, snapshot.json, log.jsonl, and one private inclusion proof per
client.

Timed (baseline): the algorithm BitMEX's proof-of-reserves-liabilities README describes,
implemented straightforwardly in Python (read, not copied): the same ledger read and nonce load,
sub_nonce = sha256(account_nonce || height || account), zero balances dropped, balances split at
random points until the leaf count reaches the next power of two of twice the accounts, leaves
shuffled, leaf = HMAC-SHA256(sub_nonce, value || index), node = sha256(l || lv || r || rv), the
tree file written root first, level by level, and the nonces file each user receives.

Afterwards: 200 clients' proof files are parsed and verified against snapshot.json (size, time).

Targets (issue 10): build 10,000,000 accounts <= 60 s, here the whole path, scaled to the count
run (60 s x N / 10,000,000); proof <= 2 KB; verify <= 5 ms.
Usage: .venv/bin/python bench/por.py [accounts]   (default 1,000,000)
Last line: por_publish_<N>_s=<B> proof_bytes=<P> verify_ms=<V> bitmex_baseline_<N>_s=<X>
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from coincurve import PrivateKey
from embit.networks import NETWORKS
from embit.script import Script

from coffer.btc import bip322_sign, script
from coffer.db import make_engine, migrate
from coffer.ledger import AccountKey, Kind, Ledger, Transfer, credit, debit
from coffer.ledger.tables import ledger_accounts, ledger_clients
from coffer.por.adapters import liabilities_from_ledger
from coffer.por.nonces import account_nonces, load_account_nonces
from coffer.por.reserves import ControlProof, KeyProof, ReserveEntry, build_reserves_document
from coffer.por.verify import (
    leaf_digest,
    load_published_roots,
    node_digest,
    parse_inclusion_proof,
    reserves_challenge,
    sub_nonce,
    verify_inclusion,
)
from coffer.testing import PostgresServer
from verdict import at_most, verdict

BUILD_S_PER_10M = 60.0  # issue 10
PROOF_BYTES_MAX = 2048  # issue 10
VERIFY_MS_MAX = 5.0  # issue 10
ACCOUNTS_DEFAULT = 1_000_000
HEIGHT = 900_000
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
BLOCK_HASH = "ab" * 32
MIN_SPLIT = 2
SEED_CHUNK = 50_000


def targets(accounts: int) -> tuple:  # type: ignore[type-arg]
    """The three enforced targets for a run over `accounts` accounts."""
    limit_s = BUILD_S_PER_10M * accounts / 10_000_000
    return (at_most(f"por publish of {accounts:,} accounts from PostgreSQL to every file written <= {limit_s:.2f} s"
                    f" ({BUILD_S_PER_10M:.0f} s per 10,000,000)", limit_s),
            at_most(f"por inclusion proof <= {PROOF_BYTES_MAX} bytes", PROOF_BYTES_MAX),
            at_most(f"por proof verification median <= {VERIFY_MS_MAX} ms", VERIFY_MS_MAX))


def seed(engine: sa.engine.Engine, accounts: int) -> int:
    """N clients with a funded BTC account and a stored nonce; returns the total liability (sats)."""
    ledger = Ledger(engine)
    ledger.open_house_accounts(["BTC"], at=T0)
    rng = random.Random(1)
    total = 0
    for start in range(0, accounts, SEED_CHUNK):
        numbers = range(start + 1, min(accounts, start + SEED_CHUNK) + 1)
        with engine.begin() as conn:  # what open_client writes per client, in bulk
            conn.execute(ledger_clients.insert(), [{"client_id": f"c{n}", "account_number": n * 7919,
                                                    "opened_at": T0.isoformat()} for n in numbers])
            conn.execute(ledger_accounts.insert(), [
                {"account_key": str(AccountKey.available(f"c{n}", "BTC") if name == "available"
                                    else AccountKey.held(f"c{n}", "BTC")),
                 "book": "client", "name": name, "asset": "BTC", "client_id": f"c{n}", "balance": 0,
                 "opened_at": T0.isoformat()} for n in numbers for name in ("available", "held")])
            conn.execute(account_nonces.insert(), [{"account_number": str(n * 7919), "nonce_hex": rng.randbytes(32).hex()}
                                                   for n in numbers])
        amounts = [rng.randrange(0, 10**8) if n % 50 else 0 for n in numbers]  # some clients hold nothing
        total += sum(amounts)
        cold = AccountKey.custody("cold", "BTC")
        deposits = [Transfer(f"seed-{n}", Kind.DEPOSIT, (debit(cold, amount), credit(
            AccountKey.available(f"c{n}", "BTC"), amount)), T0) for n, amount in zip(numbers, amounts, strict=True)
            if amount]
        for _ in ledger.apply_batches(deposits[i:i + 10_000] for i in range(0, len(deposits), 10_000)):
            pass
    return total


def reserves_document(total_sats: int) -> tuple[dict, str]:  # type: ignore[type-arg]
    """A signed BTC reserves document (one 2-of-3 P2WSH cold address) covering `total_sats`."""
    signers = [PrivateKey(bytes([i + 1]) * 32) for i in range(3)]
    pubkeys = sorted(key.public_key.format() for key in signers)
    witness_script = bytes([0x52]) + b"".join(b"\x21" + key for key in pubkeys) + bytes([0x53, 0xAE])
    address = Script(script.p2wsh_script(witness_script)).address(NETWORKS["regtest"])
    challenge = reserves_challenge("BTC", "regtest", HEIGHT, BLOCK_HASH)
    proof = ControlProof("cold quorum 1+2", bip322_sign.sign_p2wsh_multisig(
        witness_script, [s.secret for s in signers[:2]], challenge))
    descriptor = f"wsh(multi(2,{','.join(k.hex() for k in pubkeys)}))"
    key_proofs = [KeyProof(f"signer {i}", Script(script.p2wpkh_script(s.public_key.format())).address(
        NETWORKS["regtest"]), bip322_sign.sign_p2wpkh(s.secret, challenge)) for i, s in enumerate(signers)]
    document = build_reserves_document("BTC", "regtest", HEIGHT, BLOCK_HASH,
                                       [ReserveEntry(address, total_sats + 10**8, "cold", descriptor, (proof,))],
                                       descriptors=[descriptor], key_proofs=key_proofs)
    return document, descriptor


def publish(work: Path, database_url: str) -> float:
    """Seconds for `coffer por publish` from the ledger in PostgreSQL to every file written."""
    home = work / "home"
    env = {**os.environ, "COFFER_DATABASE_URL": database_url}
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "coffer"), "por", "publish", "--home", str(home),
                    "--reserves", str(work / "reserves-BTC.json"), "--signing-key", str(work / "signing.key"),
                    "--log", str(work / "log.jsonl"), "--proofs-dir", str(work / "private"),
                    "--out", str(work / "snapshot")], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _split_to_power_of_two(pieces: list[list[int]], rng: random.SystemRandom) -> None:
    """Split balances at random points (each piece of value >= 2) until the count is the next
    power of two of MIN_SPLIT times the accounts."""
    wanted = 1
    while wanted < len(pieces) * MIN_SPLIT:
        wanted *= 2
    while len(pieces) < wanted:
        grew = False
        for index in range(len(pieces)):
            if len(pieces) == wanted:
                break
            account, value = pieces[index]
            if value < 2:
                continue
            cut = rng.randint(1, value - 1)
            pieces[index] = [account, cut]
            pieces.append([account, value - cut])
            grew = True
        if not grew:
            raise SystemExit("baseline: nothing left to split")


def bitmex_baseline(engine: sa.engine.Engine, out: Path) -> float:
    """Seconds for the straightforward BitMEX build from the same ledger snapshot to its files."""
    started = time.perf_counter()
    liabilities = [(item.account_number, item.amount) for item in liabilities_from_ledger(Ledger(engine), "BTC")]
    nonces = load_account_nonces(engine, [account for account, _ in liabilities])
    keys = {account: sub_nonce(nonces[account], HEIGHT, account) for account, _ in liabilities}
    pieces = [[account, amount] for account, amount in liabilities if amount > 0]
    rng = random.SystemRandom()
    _split_to_power_of_two(pieces, rng)
    rng.shuffle(pieces)
    level = [(leaf_digest(keys[account], value, index), value) for index, (account, value) in enumerate(pieces)]
    levels = [level]
    while len(level) > 1:
        level = [(node_digest(level[i][0], level[i][1], level[i + 1][0], level[i + 1][1]), level[i][1] + level[i + 1][1])
                 for i in range(0, len(level), 2)]
        levels.append(level)
    out.mkdir()
    with (out / "liabilities.txt").open("w", encoding="ascii") as tree_file:
        tree_file.write(f"block_height:{HEIGHT}\n")
        for row in reversed(levels):
            tree_file.writelines(f"{digest.hex()},{value}\n" for digest, value in row)
    with (out / "nonces.txt").open("w", encoding="ascii") as nonce_file:
        nonce_file.writelines(f"{account},{nonce.hex()}\n" for account, nonce in nonces.items())
    return time.perf_counter() - started


def sample_proofs(work: Path, engine: sa.engine.Engine, count: int) -> tuple[list[int], list[float]]:
    """(sizes, verify ms) of `count` clients' published proofs checked against snapshot.json."""
    roots = load_published_roots(json.loads((work / "snapshot" / "snapshot.json").read_text()))
    files = sorted((work / "private" / "BTC").iterdir())
    chosen = random.Random(2).sample(files, min(count, len(files)))
    nonces = load_account_nonces(engine, [int(path.stem) for path in chosen])
    balances = {item.account_number: item.amount for item in liabilities_from_ledger(Ledger(engine), "BTC")}
    sizes, verify_ms = [], []
    for path in chosen:
        raw = path.read_bytes()
        account = int(path.stem)
        started = time.perf_counter()
        verify_inclusion(parse_inclusion_proof(raw), nonces[account], roots["BTC"], expected_balance=balances[account])
        verify_ms.append((time.perf_counter() - started) * 1000)
        sizes.append(len(raw))
    return sizes, verify_ms


def main() -> int:
    accounts = int(sys.argv[1]) if len(sys.argv) > 1 else ACCOUNTS_DEFAULT
    with PostgresServer() as server, tempfile.TemporaryDirectory(prefix="coffer-bench-por-") as directory:
        work = Path(directory)
        url = server.create_database("por")
        engine = make_engine(url)
        migrate(engine)
        started = time.perf_counter()
        total = seed(engine, accounts)
        document, _ = reserves_document(total)
        (work / "reserves-BTC.json").write_text(json.dumps(document))
        (work / "signing.key").write_text(os.urandom(32).hex())
        (work / "home").mkdir()
        (work / "home" / "coffer.toml").write_text("")
        print(f"set-up: {accounts:,} clients in PostgreSQL, {total:,} sats of liabilities "
              f"({time.perf_counter() - started:.1f} s, not timed)", flush=True)
        publish_s = publish(work, url)
        written = sum(1 for _ in (work / "private" / "BTC").iterdir())
        baseline_s = bitmex_baseline(engine, work / "bitmex")
        sizes, verify_ms = sample_proofs(work, engine, 200)
        files = sorted(path.name for path in (work / "snapshot").iterdir())
        engine.dispose()
    print(f"coffer por publish: {publish_s:.1f} s for {accounts:,} accounts ({written:,} proof files; "
          f"snapshot files {files})")
    print(f"baseline, BitMEX's README algorithm, straightforward Python, same snapshot, tree and nonce files: "
          f"{baseline_s:.1f} s")
    print(f"proof bytes: median {statistics.median(sizes):.0f}, max {max(sizes)} over {len(sizes)} clients; "
          f"verify: median {statistics.median(verify_ms):.2f} ms, max {max(verify_ms):.2f} ms")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
    build, proof, verify = targets(accounts)
    code = verdict([(build, publish_s), (proof, max(sizes)), (verify, statistics.median(verify_ms))])
    print(f"por_publish_{accounts}_s={publish_s:.1f} proof_bytes={max(sizes)} "
          f"verify_ms={statistics.median(verify_ms):.2f} bitmex_baseline_{accounts}_s={baseline_s:.1f}")
    return code


if __name__ == "__main__":
    sys.exit(main())
