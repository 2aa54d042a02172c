"""Shared by the console tests: the app with the console and public pages over the security
centre's fixtures, operators with Ed25519 keys, a software security key (a WebAuthn
authenticator in Python: P-256, "none" attestation), a request waiting for approval."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.testclient import TestClient
from nacl.signing import SigningKey

from coffer.policy import Operator, OperatorKey, RequestKind, Role, WithdrawalRequest
from coffer.recon import HaltSwitch
from coffer.web import create_app
from coffer.web.console import ConsoleParts, SignerView, install_console
from coffer.web.deps import SESSION_COOKIE
from tests.web.conftest import START, Web

ORIGIN = "https://testserver"
RP_ID = "testserver"
OPERATORS: dict[str, set[Role]] = {
    "ivan": {Role.INITIATOR},
    "ann": {Role.APPROVER},
    "carl": {Role.APPROVER},
    "dora": {Role.SECURITY_OFFICER},
}
OFFICERS = ("dora", "sam")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftKey:
    """A security key in software: what a browser's authenticator would answer."""

    rp_id: str = RP_ID
    origin: str = ORIGIN
    credential_id: bytes = field(default_factory=lambda: os.urandom(16))
    private: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    counter: int = 0
    user_verified: bool = True

    def _cose(self) -> bytes:
        numbers = self.private.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def _client_data(self, kind: str, challenge_b64: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge_b64, "origin": self.origin,
                           "crossOrigin": False}).encode()

    def create(self, options: dict[str, Any]) -> dict[str, Any]:
        client_data = self._client_data("webauthn.create", options["challenge"])
        auth_data = (hashlib.sha256(self.rp_id.encode()).digest() + bytes([0x41]) + struct.pack(">I", 0)
                     + bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id + self._cose())
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {"id": b64url(self.credential_id),
                "response": {"clientDataJSON": b64url(client_data), "attestationObject": b64url(attestation)}}

    def get(self, options: dict[str, Any]) -> dict[str, Any]:
        self.counter += 1
        client_data = self._client_data("webauthn.get", options["challenge"])
        flags = 0x05 if self.user_verified else 0x01  # UP, and UV when the PIN or biometric was checked
        auth_data = hashlib.sha256(self.rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", self.counter)
        signature = self.private.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {"id": b64url(self.credential_id),
                "response": {"clientDataJSON": b64url(client_data), "authenticatorData": b64url(auth_data),
                             "signature": b64url(signature)}}


@dataclass
class ConsoleWorld:
    web: Web
    app: FastAPI
    console: ConsoleParts
    keys: dict[str, OperatorKey]
    officer_keys: dict[str, SigningKey]
    request: WithdrawalRequest

    def client(self) -> TestClient:
        return TestClient(self.app, base_url=ORIGIN)

    def enrol(self, client: TestClient, operator_id: str, key: SoftKey) -> None:
        start = client.post("/api/v1/console/webauthn/register/options", json={"operator_id": operator_id})
        assert 200 == start.status_code, start.text
        body = start.json()
        signature = self.keys[operator_id].sign(bytes.fromhex(body["enrol_message"])).hex()
        done = client.post("/api/v1/console/webauthn/register",
                           json={"ceremony": body["ceremony"], **key.create(body["options"]),
                                 "ed25519_signature": signature})
        assert 200 == done.status_code, done.text

    def sign_in(self, client: TestClient, operator_id: str, key: SoftKey) -> str:
        start = client.post("/api/v1/console/webauthn/signin/options", json={"operator_id": operator_id})
        assert 200 == start.status_code, start.text
        done = client.post("/api/v1/console/webauthn/signin",
                           json={"ceremony": start.json()["ceremony"], **key.get(start.json()["options"])})
        assert 200 == done.status_code, done.text
        return str(done.json()["csrf_token"])

    def operator_session(self, operator_id: str) -> tuple[TestClient, str]:
        """A client signed in as the operator without a security key (for read-only tests)."""
        client = self.client()
        token, session = self.web.context.session_store.create("operator", operator_id, now=self.web.clock())
        client.cookies.set(SESSION_COOKIE, token)
        return client, session.csrf_token


def make_request(world_policy: Any, *, amount_minor: int = 500_000, nonce: str = "00" * 16) -> WithdrawalRequest:
    at = int(START.timestamp())
    return WithdrawalRequest(kind=RequestKind.CLIENT_WITHDRAWAL, asset="BTC", amount_minor=amount_minor,
                             destination="bcrt1qdestination", source_wallet="auto", account="acct1",
                             fee_policy="normal", nonce=nonce, expires_at_s=at + 6 * 3600, initiator="ivan")


def build_console(web: Web, *, por_dir: Path | None = None, por_public_key: bytes | None = None,
                  origin: str = ORIGIN, rp_id: str = RP_ID) -> ConsoleWorld:
    """The app with the console: operators, officers, a whitelisted destination, one request waiting."""
    policy = web.policy
    keys = {name: OperatorKey(hashlib.sha256(name.encode()).digest()) for name in OPERATORS}
    for name, roles in OPERATORS.items():
        policy.add_operator(Operator(name, frozenset(roles), keys[name].public_key), by="root", now=START)
    policy.bootstrap_default(now=START)
    policy.add_whitelist("acct1", "BTC", "bcrt1qdestination", by="root", now=START - timedelta(days=3))
    from coffer.audit import AuditLog

    audit = AuditLog(web.engine)
    halt = HaltSwitch(web.engine, quorum=2, audit=audit)
    officer_keys = {name: SigningKey(hashlib.sha256(b"officer" + name.encode()).digest()) for name in OFFICERS}
    for name, key in officer_keys.items():
        halt.register_officer(name, bytes(key.verify_key))
    from coffer.ledger import Ledger

    console = ConsoleParts(web.engine, policy, halt, audit, Ledger(web.engine), rp_id=rp_id, origins=(origin,),
                           signers=lambda: [SignerView("cold signer", "1", "https://127.0.0.1:18601", ("0a1b2c3d",)),
                                            SignerView("co-signer", "c1", "https://127.0.0.1:18701")],
                           por_dir=por_dir, por_public_key=por_public_key)
    routers, template_dirs = install_console(web.context, console)
    app = create_app(web.context, routers=routers, template_dirs=template_dirs)
    request = make_request(policy)
    policy.submit(request, now=START)
    return ConsoleWorld(web, app, console, keys, officer_keys, request)
