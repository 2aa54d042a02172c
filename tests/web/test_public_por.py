"""The public proof-of-reserves page and API: the latest signed statements and verified log, and
a client's pasted inclusion proof checked by the stand-alone verifier; a client's own balances."""

from __future__ import annotations

from pathlib import Path

import pytest
from nacl.signing import SigningKey

from coffer.por.publish import publish_snapshot
from coffer.por.verify import inclusion_proof_to_json, parse_inclusion_proof
from tests.web.conftest import Web, sign_in
from tests.web.console_world import ConsoleWorld, build_console

STATEMENT_KEY = SigningKey(b"\x07" * 32)
BLOCK = "11" * 32


def publish(web: Web, directory: Path) -> dict[str, str]:
    """A snapshot with alice (5000) and bob (7000); returns each client's proof as JSON."""
    from coffer.ledger import Ledger

    ledger = Ledger(web.engine)
    numbers = {c: ledger.client(c).account_number for c in ("alice", "bob")}
    reserves = {"BTC": {"asset": "BTC", "chain": "regtest", "height": 150, "block_hash": BLOCK, "total": 20_000}}
    publish_snapshot(directory / "snap-1", chain="regtest", height=150, block_hash=BLOCK,
                     liabilities={"BTC": [(numbers["alice"], 5000), (numbers["bob"], 7000)]},
                     nonces={numbers[c]: bytes.fromhex(web.nonces[c]) for c in numbers}, reserves=reserves,
                     sign=lambda m: bytes(STATEMENT_KEY.sign(m).signature), public_key=bytes(STATEMENT_KEY.verify_key),
                     log_path=directory / "log.jsonl", proofs_dir=directory / "private")
    return {c: inclusion_proof_to_json(parse_inclusion_proof((directory / "private" / "BTC" / f"{n}.bin").read_bytes()))
            for c, n in numbers.items()}


@pytest.fixture
def published(web: Web, tmp_path: Path) -> tuple[ConsoleWorld, dict[str, str]]:
    proofs = publish(web, tmp_path / "por")
    return build_console(web, por_dir=tmp_path / "por", por_public_key=bytes(STATEMENT_KEY.verify_key)), proofs


def test_public_page_shows_verified_statements_and_log(published: tuple[ConsoleWorld, dict[str, str]]) -> None:
    """Anyone sees the latest statement (signature verified) and the verified public log."""
    world, _ = published
    data = world.client().get("/api/v1/public/por").json()
    assert (True, 12_000, True) == (data["published"], data["statements"]["BTC"]["statement"]["liabilities_total"],
                                    data["statements"]["BTC"]["signature_verified"])
    assert (True, 1) == (data["log"]["verified"], len(data["log"]["entries"]))
    page = world.client().get("/por").text
    assert 'id="snapshot-height">150<' in page and "signatures and hash chain verified" in page


def test_public_page_reads_in_btc_with_coverage_and_history(published: tuple[ConsoleWorld, dict[str, str]]) -> None:
    """The page writes amounts in BTC with the unit, a coverage bar, yes/no, and each published statement."""
    world, _ = published
    page = world.client().get("/por").text
    assert '<td class="amount liabilities">0.00012000 BTC</td>' in page
    assert '<td class="amount reserves">0.00020000 BTC</td>' in page
    assert "166.66 % of liabilities" in page and 'class="fill" width="100"' in page
    assert '<td class="solvent good">yes</td>' in page
    assert '<tr class="history-row" data-seq="0">' in page and page.count('class="signature good">verified') == 2
    assert (False, False) == ("True" in page, ">12000<" in page)


def test_inclusion_proof_checks_and_tampering_fails(web: Web, published: tuple[ConsoleWorld, dict[str, str]]) -> None:
    """Alice's proof with her nonce verifies; with bob's nonce or a changed value it does not."""
    world, proofs = published
    client = world.client()
    ok = client.post("/api/v1/public/por/verify", json={"proof": proofs["alice"], "account_nonce": web.nonces["alice"]})
    assert {"ok": True, "balance": "5000", "total": "12000"} == {k: ok.json()[k] for k in ("ok", "balance", "total")}
    wrong = client.post("/api/v1/public/por/verify", json={"proof": proofs["alice"], "account_nonce": web.nonces["bob"]})
    assert (False, "inclusion") == (wrong.json()["ok"], wrong.json()["check"])
    tampered = proofs["alice"].replace('"leaves":[[', '"leaves":[[0,1],[', 1)
    bad = client.post("/api/v1/public/por/verify", json={"proof": tampered, "account_nonce": web.nonces["alice"]})
    assert False is bad.json()["ok"]
    garbage = client.post("/api/v1/public/por/verify", json={"proof": "zz", "account_nonce": web.nonces["alice"]})
    assert (200, "proof format") == (garbage.status_code, garbage.json()["check"])


def test_nothing_published_yet(web: Web) -> None:
    """Without a snapshot the page says so and a proof check explains why it cannot run."""
    world = build_console(web)
    assert False is world.client().get("/api/v1/public/por").json()["published"]
    assert "no-snapshot" in world.client().get("/por").text
    result = world.client().post("/api/v1/public/por/verify", json={"proof": "{}", "account_nonce": "00" * 32}).json()
    assert (False, "snapshot") == (result["ok"], result["check"])


def test_client_sees_only_own_balances(web: Web) -> None:
    """/api/v1/me/balances shows the signed-in client's accounts only, and nothing to anyone else."""
    world = build_console(web)
    alice = world.client()
    sign_in(web, alice, "alice")
    accounts = alice.get("/api/v1/me/balances").json()
    assert "alice" == accounts["client_id"] and accounts["balances"]
    assert all(":alice" in item["account"] or "alice" in item["account"] for item in accounts["balances"])
    assert not any("bob" in item["account"] for item in accounts["balances"])
    assert 401 == world.client().get("/api/v1/me/balances").status_code
    operator, _ = world.operator_session("carl")
    assert 401 == operator.get("/api/v1/me/balances").status_code
