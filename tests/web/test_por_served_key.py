"""`coffer serve`'s public page checks every statement against the publication key its own home
recorded at the DKG: no flag, no key pasted by an operator."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from nacl.signing import SigningKey

from coffer.coordinator import Coordinator
from coffer.mpc import frost
from coffer.mpc.hazmat.dealer import trusted_dealer_keygen
from coffer.mpc.service.publication import stored_publication_key
from coffer.mpc.service.tables import mpc_keys
from coffer.por.publish import publish_snapshot
from coffer.web.console.serve import build_app
from tests.web.test_console_serve import make_home

BLOCK = "11" * 32
GROUP_KEY = SigningKey(b"\x09" * 32)  # stands in for the co-signers' jointly held Ed25519 key


def _record_publication_key(coordinator: Coordinator, key: SigningKey) -> None:
    """What the DKG of the "publication" key writes into the coordinator's database."""
    digest = hashlib.sha512(bytes(key)).digest()
    scalar = int.from_bytes(bytes([digest[0] & 248]) + digest[1:31] + bytes([digest[31] & 127 | 64]), "little")
    _, public = trusted_dealer_keygen(frost.ED25519.group, 3, 2, secret=scalar % frost.ED25519.group.order)
    assert bytes(key.verify_key) == public.group.serialize_element(public.group_public_key)
    now = "2026-12-07T00:00:00+00:00"
    with coordinator.engine.begin() as conn:
        conn.execute(sa.insert(mpc_keys).values(
            key_id="publication", suite="ed25519", version=1, threshold=2, group_public_key=bytes(key.verify_key).hex(),
            public_package=public.to_bytes().hex(),
            members=json.dumps({str(i): {"cosigner": i, "hostpubkey": "00" * 32} for i in (1, 2, 3)}),
            revoked="[]", status="active", created_at=now, updated_at=now))


def _publish(home: Path, signer: SigningKey) -> None:
    reserves = {"BTC": {"asset": "BTC", "chain": "regtest", "height": 150, "block_hash": BLOCK, "total": 30_000}}
    publish_snapshot(home / "por" / "snap-1", chain="regtest", height=150, block_hash=BLOCK,
                     liabilities={"BTC": [(1, 10_000), (2, 15_000)]}, nonces={1: b"\x01" * 32, 2: b"\x02" * 32},
                     reserves=reserves, sign=lambda m: bytes(signer.sign(m).signature),
                     public_key=bytes(signer.verify_key), log_path=home / "por" / "log.jsonl")


@pytest.fixture
def home(tmp_path: Path) -> Iterator[tuple[Path, Coordinator, int]]:
    home = tmp_path / "home"
    home.mkdir()
    port, _ = make_home(home)
    coordinator = Coordinator.open(home)
    try:
        yield home, coordinator, port
    finally:
        coordinator.close()


def _page(coordinator: Coordinator, port: int) -> tuple[dict[str, object], str]:
    served = build_app(coordinator, host="127.0.0.1", port=port, recon=False, mail=False, probe_signers=False,
                       pipeline=False)
    with TestClient(served.app) as client:
        return client.get("/api/v1/public/por").json(), client.get("/por").text


def test_serve_verifies_statements_with_the_home_publication_key(home: tuple[Path, Coordinator, int]) -> None:
    """With the DKG's key in the home, every statement and the log read as verified, with no flag."""
    path, coordinator, port = home
    _record_publication_key(coordinator, GROUP_KEY)
    _publish(path, GROUP_KEY)
    assert bytes(GROUP_KEY.verify_key) == stored_publication_key(coordinator.engine)
    data, page = _page(coordinator, port)
    assert (True, True, bytes(GROUP_KEY.verify_key).hex()) == (
        data["statements"]["BTC"]["signature_verified"], data["log"]["verified"], data["public_key"])
    assert (True, False) == ('class="signature good">verified' in page, "not configured" in page)


def test_serve_refuses_statements_signed_by_another_key(home: tuple[Path, Coordinator, int]) -> None:
    """A statement signed by any key but the home's publication key is shown as not verifying."""
    path, coordinator, port = home
    _record_publication_key(coordinator, GROUP_KEY)
    _publish(path, SigningKey(b"\x0a" * 32))
    data, page = _page(coordinator, port)
    assert (False, False) == (data["statements"]["BTC"]["signature_verified"], data["log"]["verified"])
    assert 'class="signature bad">does NOT verify' in page


def test_serve_before_the_dkg_says_it_cannot_check(home: tuple[Path, Coordinator, int]) -> None:
    """A home with no publication key yet says so instead of calling anything verified."""
    path, coordinator, port = home
    _publish(path, GROUP_KEY)
    assert None is stored_publication_key(coordinator.engine)
    data, page = _page(coordinator, port)
    assert (None, False) == (data["statements"]["BTC"]["signature_verified"], data["log"]["verified"])
    assert "this server knows no publication key" in page
