"""Co-signer logic in this process (no network): shares at rest, sealing, DKG blame, strict bodies."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coffer.db import make_engine, migrate, sqlite_url
from coffer.errors import CofferError
from coffer.hsm import DecryptionFailed
from coffer.keyholder.facts import KeyholderFacts
from coffer.keyholder.routes import FROST_ROUTES
from coffer.keyholder.server import error_body
from coffer.mpc.dkg.messages import ParticipantMsg1
from coffer.mpc.errors import MpcError
from coffer.mpc.service import CosignerRefused, MpcCoordinator, ProtocolViolation
from coffer.mpc.service.client import _error
from coffer.mpc.service.cosigner import EXPECTED_ERRORS, SUITES, Cosigner
from coffer.mpc.service.server import cosigner_dir, cosigner_error_status
from coffer.mpc.service.store import CosignerStore, ShareVault
from coffer.mpc.service.wire import encode_body
from coffer.policy import MemorySignedHistory, OperatorRegistry, Route, SignerGuard, default_policy
from coffer.testing import make_token
from coffer.testing.governance import Quorum


class Clear:
    def require_clear(self) -> None:
        return None


# Several SoftHSM2 tokens used from concurrent threads of one process can crash the PKCS#11 module
# (each co-signer process has one token and its Hsm serialises its own calls); one call at a time here.
_CALL_LOCK = threading.Lock()


class LocalClient:
    """Calls a `Cosigner` directly, through the same bytes and error mapping as the HTTP layer."""

    def __init__(self, cosigner: Cosigner, tamper: dict[str, Any] | None = None) -> None:
        self.cosigner_id = cosigner.cosigner_id
        self._routes = {route.path: getattr(cosigner, route.handler) for route in FROST_ROUTES.routes}
        self._tamper = tamper or {}

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            with _CALL_LOCK:
                reply = json.loads(encode_body(self._routes[path](encode_body(body))))
        except (*EXPECTED_ERRORS, MpcError) as error:
            status = cosigner_error_status(error)
            assert status is not None, error
            raise _error(self.cosigner_id, status, error_body(error)) from None
        change = self._tamper.get(path)
        return change(reply) if change else reply  # type: ignore[no-any-return]

    def close(self) -> None:
        return None


@dataclass
class Local:
    cosigners: dict[int, Cosigner]
    stores: dict[int, CosignerStore]
    vaults: dict[int, ShareVault]
    mpc: MpcCoordinator
    directory: Path


QUORUM = Quorum.generate()


def _cosigner(cosigner_id: int, directory: Path) -> tuple[Cosigner, CosignerStore, ShareVault]:
    hsm = make_token().open()
    vault = ShareVault(hsm, cosigner_id)
    QUORUM.provision(directory / f"c{cosigner_id}")
    store = CosignerStore(directory / f"c{cosigner_id}" / "cosigner.db")
    guard = SignerGuard(signer_id=f"c{cosigner_id}", route=Route.HOT, attestation_public_key=b"\x02" + bytes(32),
                        operators=OperatorRegistry(()), policy=default_policy(), history=MemorySignedHistory(),
                        facts=KeyholderFacts(":memory:"), halted=lambda: False)
    return Cosigner(cosigner_id, store, vault, guard=guard, halt=Clear(), attestation_public_key=b"\x02" + bytes(32)), \
        store, vault


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    directory = Path(tmp_path_factory.mktemp("local-cosigners"))
    built = {i: _cosigner(i, directory) for i in (1, 2, 3)}
    engine = make_engine(sqlite_url(directory / "coordinator.db"))
    migrate(engine)
    cosigners = {i: b[0] for i, b in built.items()}
    mpc = MpcCoordinator(engine, {i: LocalClient(c) for i, c in cosigners.items()},  # type: ignore[misc]
                         approve=QUORUM.approve)
    mpc.dkg("k-taproot", "taproot", 2)
    mpc.dkg("k-ed", "ed25519", 2)
    yield Local(cosigners, {i: b[1] for i, b in built.items()}, {i: b[2] for i, b in built.items()}, mpc, directory)
    mpc.close()
    engine.dispose()


def test_shares_at_rest_are_ciphertext(local: Local) -> None:
    """No co-signer's store (database, WAL) contains its share in any encoding: only HSM ciphertext."""
    for cosigner_id, cosigner in local.cosigners.items():
        for record in local.stores[cosigner_id].keys():
            package = cosigner._unseal(record)
            secret = package.public.group.serialize_scalar(package.secret_share)
            files = list((local.directory / f"c{cosigner_id}").glob("cosigner.db*"))
            assert files
            for path in files:
                data = path.read_bytes()
                assert secret not in data
                assert secret.hex().encode() not in data
                assert secret[::-1] not in data


def test_sealed_share_is_bound_to_cosigner_key_and_version(local: Local) -> None:
    """A sealed share opens only under its own co-signer id, key id, version and identifier."""
    record = local.stores[1].key("k-ed")
    sealed = local.stores[1].sealed_share("k-ed", record.version)
    local.vaults[1].open_share("k-ed", record.version, record.identifier, sealed)
    for key_id, version, identifier in (("k-taproot", record.version, record.identifier),
                                        ("k-ed", record.version + 1, record.identifier),
                                        ("k-ed", record.version, record.identifier + 1)):
        with pytest.raises(DecryptionFailed):
            local.vaults[1].open_share(key_id, version, identifier, sealed)
    with pytest.raises(DecryptionFailed):
        local.vaults[2].open_share("k-ed", record.version, record.identifier, sealed)


def test_repr_shows_no_secret(local: Local) -> None:
    """Co-signer, vault and key package reprs carry no share."""
    cosigner = local.cosigners[1]
    package = cosigner._unseal(local.stores[1].key("k-ed"))
    secret = str(package.secret_share)
    for text in (repr(cosigner), repr(local.vaults[1]), repr(package)):
        assert secret not in text
        assert "redacted" in text or "secret" not in text


def test_bad_dkg_message_names_the_cosigner(local: Local) -> None:
    """A co-signer whose first DKG message is corrupted on the way is named by the coordinator."""
    def corrupt(reply: dict[str, Any]) -> dict[str, Any]:
        data = bytearray(bytes.fromhex(reply["pmsg1"]))
        data[-1] ^= 1  # the last encrypted share (to co-signer 3) is wrong
        return {"pmsg1": data.hex()}

    clients = {i: LocalClient(c, {"/v1/dkg/step1": corrupt} if i == 2 else None)
               for i, c in local.cosigners.items()}
    mpc = MpcCoordinator(local.mpc._engine, clients, approve=QUORUM.approve)  # type: ignore[arg-type]
    with pytest.raises((CosignerRefused, ProtocolViolation)) as blamed:
        mpc.dkg("k-blame", "taproot", 2)
    assert ("dkg.faulty_participant", (2,)) == (blamed.value.rule, blamed.value.culprits)


class PopCopying(MpcCoordinator):
    """Relays co-signer 2's first DKG message with the proof of possession of co-signer 1's
    message in place of its own (the rogue-key move: claim a key without knowing its secret)."""

    def _call_all(self, cosigners: Any, path: str, body: Any) -> dict[int, dict[str, Any]]:
        replies = super()._call_all(cosigners, path, body)
        if path == "/v1/dkg/step1":
            suite = SUITES["taproot"].dkg.suite
            t, n = 2, len(replies)
            first = ParticipantMsg1.parse(suite, bytes.fromhex(replies[1]["pmsg1"]), t=t, n=n)
            second = ParticipantMsg1.parse(suite, bytes.fromhex(replies[2]["pmsg1"]), t=t, n=n)
            replies[2] = {"pmsg1": dataclasses.replace(second, pop=first.pop).serialize(suite).hex()}
        return replies


def test_copied_proof_of_possession_names_the_cosigner(local: Local) -> None:
    """A DKG first message carrying another co-signer's proof of possession is refused by the
    coordinator's ChillDKG check, naming the co-signer it came from; no key is stored."""
    mpc = PopCopying(local.mpc._engine, {i: LocalClient(c) for i, c in local.cosigners.items()},  # type: ignore[arg-type]
                     approve=QUORUM.approve)
    with pytest.raises(CosignerRefused) as blamed:
        mpc.dkg("k-pop", "taproot", 2)
    assert ("dkg.faulty_participant", (2,)) == (blamed.value.rule, blamed.value.culprits)
    assert [] == [record for record in local.stores[1].keys() if record.key_id == "k-pop"]


def test_dkg_refuses_an_existing_key_id(local: Local) -> None:
    """A DKG for a key id a co-signer already holds is refused (no silent replacement of a key)."""
    with pytest.raises(CosignerRefused) as refused:
        local.cosigners[1].dkg_step1(encode_body({
            "dkg_session": "00" * 32, "key_id": "k-ed", "suite": "ed25519", "threshold": 1,
            "hostpubkeys": ["00" * 32]}))
    assert "dkg.key_exists" == refused.value.rule


@pytest.mark.parametrize("body", [
    b"", b"[]", b'{"key_id": 1}', b'{"a": 1, "a": 2}', b'{"x": 1.5}', b"\xff\xfe",
])
def test_malformed_bodies_are_typed_errors_naming_the_coordinator(local: Local, body: bytes) -> None:
    """Bodies that are not strict JSON objects of the right fields raise ProtocolViolation(sender=None)."""
    with pytest.raises(ProtocolViolation) as bad:
        local.cosigners[1].sign_commit(body)
    assert bad.value.sender is None


def test_refresh_and_reshare_in_process(local: Local) -> None:
    """Refresh then re-share to 2-of-2 without co-signer 3: same group key, co-signer 3 refused after."""
    before = local.mpc.key("k-taproot")
    refreshed = local.mpc.refresh("k-taproot")
    assert before.group_public_key == refreshed.group_public_key
    reshared = local.mpc.reshare("k-taproot", revoke=[3], new_threshold=2)
    assert (3,) == reshared.revoked
    assert [1, 2] == [m.cosigner for m in reshared.members]
    assert {3} == local.stores[1].revoked("k-taproot")
    assert datetime.now(UTC)


def test_ecdsa_key_lifecycle_runs_over_the_same_layer(local: Local) -> None:
    """The threshold-ECDSA key (untweaked secp256k1) is generated, refreshed and re-shared like the others."""
    key = local.mpc.dkg("k-ecdsa", "ecdsa", 2)
    assert 33 == len(key.group_public_key)
    refreshed = local.mpc.refresh("k-ecdsa")
    assert key.group_public_key == refreshed.group_public_key
    with pytest.raises(CosignerRefused):
        local.mpc.sign_session(refreshed, "digest", {"digest": "00" * 32}, [bytes(32)])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mutated_body_gives_a_typed_error(local: Local, data: st.DataObject) -> None:
    """Every one-byte change of a request body gives a typed Coffer error (or a refusal), never a crash."""
    body = bytearray(encode_body({
        "key_id": "k-ed", "version": local.mpc.key("k-ed").version, "signers": [1, 2],
        "coordinator_nonce": "33" * 32, "kind": "publication",
        "payload": {"document": (b"coffer-por-log/1\n" + b'{"seq":0}').hex(), "attestation": "44" * 64}}))
    index = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    body[index] = data.draw(st.integers(min_value=0, max_value=255))
    for method in (local.cosigners[1].sign_commit, local.cosigners[1].sign_share, local.cosigners[1].dkg_step2,
                   local.cosigners[1].dealing_receive):
        try:
            method(bytes(body))
        except CofferError:
            continue


def test_resync_after_a_crash_before_the_directory_update(local: Local) -> None:
    """If the coordinator dies after the co-signers confirmed a refresh, `resync` adopts the new version."""
    from coffer.mpc.service.tables import mpc_keys

    local.mpc.dkg("k-resync", "ed25519", 2)
    stale = local.mpc.key("k-resync")
    fresh = local.mpc.refresh("k-resync")
    with local.mpc._engine.begin() as conn:  # as if the final save never happened
        conn.execute(mpc_keys.update().where(mpc_keys.c.key_id == "k-resync").values(
            version=stale.version, public_package=stale.public.to_bytes().hex()))
    assert fresh.version == local.mpc.resync("k-resync").version
    assert fresh.public.to_bytes() == local.mpc.resync("k-resync").public.to_bytes()
    assert () == local.mpc.resync("k-resync").revoked


def test_mpc_provision_writes_cosigner_pins(tmp_path: Path) -> None:
    """`coffer mpc provision` writes the coordinator's pins into each co-signer's directory."""
    import subprocess
    import sys

    from coffer.mpc.service.pins import read_pins

    home = tmp_path / "home"
    # In a child process: `coffer init` points this process's SoftHSM2 at the new home's tokens.
    setup = ("import sys; from pathlib import Path; from coffer.home import init_home; "
             "from coffer.coordinator import Coordinator; home = Path(sys.argv[1]); init_home(home); "
             "c = Coordinator.open(home); c.policy.bootstrap_default(now=c.now()); c.close()")
    subprocess.run([sys.executable, "-c", setup, str(home)], check=True, timeout=120)
    result = subprocess.run([sys.executable, "-m", "coffer.cli", "mpc", "provision", "-n", "2", "--home", str(home)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert 0 == result.returncode, result.stdout + result.stderr
    for cosigner in (1, 2):
        pins = read_pins(cosigner_dir(home, cosigner))
        assert 33 == len(pins.attestation_public_key)
        assert pins.notice_url is not None and pins.notice_url.endswith("/halt/notice")
