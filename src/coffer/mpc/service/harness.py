"""A co-signer cluster for tests, the benchmark and the demo (never production): n real
`coffer cosigner` processes (FROST and DKLs23 engines) on loopback with mutual TLS, a pinned attestation HSM key, operators,
a halt-notice server and an `MpcCoordinator`. The coordinator's attestation key lives in a test
SoftHSM2 token; operator keys are fixed test keys."""

from __future__ import annotations

import itertools
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from coffer.db import make_engine, migrate, sqlite_url
from coffer.hsm import Hsm
from coffer.mpc.service import CosignerClient, CosignerPins, MpcCoordinator, write_pins
from coffer.mpc.service.messages import attest_publication
from coffer.policy import (
    Approval,
    AttestedFacts,
    Operator,
    OperatorKey,
    OperatorRegistry,
    RequestKind,
    Role,
    SignedDecision,
    WithdrawalRequest,
    attest_decision,
    default_policy,
    ensure_attestation_key,
    new_nonce,
    verify_approvals,
)
from coffer.recon.notice import NOTICE_TAG, HaltNotice, NoticeServer, SignedNotice
from coffer.testing import ServiceProcess, free_port, make_token, wait_until
from coffer.tls import TlsFiles, issue_certificate, make_ca

ROLES: dict[str, set[Role]] = {"ivan": {Role.INITIATOR}, "bob": {Role.APPROVER}, "carol": {Role.APPROVER},
                               "dave": {Role.SECURITY_OFFICER}}


class NoticeSource:
    """Stands in for the coordinator's notice issuer: fresh signed notices, halted or not."""

    def __init__(self) -> None:
        self.key = SigningKey.generate()
        self.halted = False
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def issue(self) -> SignedNotice:
        with self._lock:
            notice = HaltNotice("coordinator", self.halted, "h-1" if self.halted else None, next(self._seq),
                                datetime.now(UTC))
        payload = notice.payload()
        return SignedNotice(payload, self.key.sign(NOTICE_TAG + payload).signature)


@dataclass
class Cluster:
    home: Path
    hsm: Hsm
    attestation_key: bytes
    notices: NoticeSource
    notice_server: NoticeServer
    processes: dict[int, ServiceProcess]
    ports: dict[int, int]
    tls: TlsFiles
    engine: Any
    mpc: MpcCoordinator
    operator_keys: dict[str, OperatorKey] = field(default_factory=dict)
    registry: OperatorRegistry | None = None

    def client(self, cosigner: int) -> CosignerClient:
        return CosignerClient(cosigner, self.ports[cosigner], self.tls)

    def restart(self, cosigner: int) -> None:
        self.processes[cosigner].kill()
        self.processes[cosigner] = _process(self.home, cosigner, self.ports[cosigner]).start()

    def request(self, destination: str, amount_sats: int, *, kind: RequestKind = RequestKind.CLIENT_WITHDRAWAL,
                account: str = "acct1") -> WithdrawalRequest:
        now_s = int(datetime.now(UTC).timestamp())
        return WithdrawalRequest(kind=kind, asset="BTC", amount_minor=amount_sats, destination=destination,
                                 source_wallet="hot", account=account, fee_policy="normal", nonce=new_nonce(),
                                 expires_at_s=now_s + 3600,
                                 initiator=f"client:{account}" if kind is RequestKind.CLIENT_WITHDRAWAL else "ivan")

    def attest(self, request: WithdrawalRequest) -> SignedDecision:
        """The honest coordinator: decide with the policy, then have the HSM attest."""
        from coffer.policy import DecisionContext

        now = datetime.now(UTC)
        now_s = int(now.timestamp())
        assert self.registry is not None
        approvals: tuple[Approval, ...] = ()
        if request.kind is not RequestKind.CLIENT_WITHDRAWAL:
            from coffer.policy import sign_approval

            approvals = tuple(sign_approval(self.operator_keys[name], request=request, operator_id=name,
                                            role=Role.APPROVER, expires_at_s=now_s + 600) for name in ("bob", "carol"))
        verified = verify_approvals(request, approvals, self.registry, now_s=now_s)
        context = DecisionContext(halted=False, account_frozen=False, whitelisted_at_s=now_s - 3 * 86400,
                                  hot_balance_minor=10**9, approvals=verified)
        decision = default_policy().decide(request, context, now)
        assert decision.allowed, decision
        return attest_decision(self.hsm, request, decision, approvals, AttestedFacts(False, now_s - 3 * 86400, 10**9),
                               now_s=now_s)

    def attest_publication(self, document: bytes) -> bytes:
        return attest_publication(self.hsm, document)

    def stop(self) -> None:
        self.mpc.close()
        for process in self.processes.values():
            process.stop()
        self.notice_server.stop()
        self.hsm.close()
        self.engine.dispose()


def cosigner_argv(home: Path, cosigner: int, port: int, *, engines: Sequence[str] = (),
                  module: str | None = None) -> list[str]:
    """`coffer cosigner` for co-signer N (both engines unless `engines` says), or another entry point
    taking the same arguments (`module`: a test's misbehaving co-signer)."""
    args = ["--id", str(cosigner), "--home", str(home), "--port", str(port),
            *itertools.chain.from_iterable(("--engine", engine) for engine in engines)]
    return [sys.executable, "-m", module, *args] if module else [sys.executable, "-m", "coffer.cli", "cosigner", *args]


def _process(home: Path, cosigner: int, port: int, *, engines: Sequence[str] = (),
             module: str | None = None) -> ServiceProcess:
    root = str(Path(__file__).resolve().parents[4])  # the checkout: a test module as entry point
    return ServiceProcess(f"cosigner-{cosigner}", cosigner_argv(home, cosigner, port, engines=engines, module=module),
                          workdir=home / "cosigners" / str(cosigner), port=port, ready_timeout_s=180,
                          env={"PYTHONPATH": root} if module else None)


def provision_cosigners(home: Path, cosigners: Iterable[int], pins: CosignerPins) -> TlsFiles:
    """Write each co-signer's pins and make sure the local CA and the coordinator's certificate
    exist in HOME/tls (as `coffer init` does); returns the coordinator's TLS files."""
    make_ca(home / "tls")
    coordinator_dir = home / "tls" / "coordinator"
    if (coordinator_dir / "tls.pem").exists():
        tls = TlsFiles(home / "tls" / "ca.pem", coordinator_dir / "tls.pem", coordinator_dir / "tls.key")
    else:
        tls = issue_certificate(home / "tls", coordinator_dir, "coordinator")
    for cosigner in cosigners:
        write_pins(home / "cosigners" / str(cosigner), pins)
    return tls


def spawn_cosigners(home: Path, cosigners: Iterable[int], *, engines: Sequence[str] = (),
                    modules: dict[int, str] | None = None, ports: dict[int, int] | None = None,
                    timeout_s: float = 180.0) -> tuple[dict[int, ServiceProcess], dict[int, int]]:
    """Start `coffer cosigner --id N --home HOME` for each N at once; wait until all listen."""
    ids = list(cosigners)
    ports = ports or {cosigner: free_port() for cosigner in ids}
    processes = {cosigner: _process(home, cosigner, ports[cosigner], engines=engines,
                                    module=(modules or {}).get(cosigner)) for cosigner in ids}
    for process in processes.values():  # started together: their import times overlap
        process.workdir.mkdir(parents=True, exist_ok=True)
        log = process.log_path.open("ab")
        process.process = subprocess.Popen(process.argv, cwd=process.workdir, env=process.env, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
    try:
        for process in processes.values():
            wait_until(process._alive_and_ready, timeout=timeout_s, what=f"{process.name} ready")
    except BaseException:
        for process in processes.values():
            process.stop()
        raise
    return processes, ports


def start_cluster(home: Path, cosigners: Iterable[int] = range(1, 6), *, notice_max_age_s: int = 4) -> Cluster:
    """Everything a test needs: pins with a test attestation key and operators, a notice server,
    n co-signer processes, and an `MpcCoordinator` over a SQLite file in HOME."""
    home.mkdir(parents=True, exist_ok=True)
    token = make_token(f"coord-{secrets.token_hex(4)}")
    hsm = token.open()
    attestation_key = ensure_attestation_key(hsm)
    notices = NoticeSource()
    notice_server = NoticeServer(notices).start()  # type: ignore[arg-type]  # duck-typed issuer
    operator_keys = {name: OperatorKey(bytes([index + 7]) * 32) for index, name in enumerate(ROLES)}
    operators = tuple(Operator(name, frozenset(roles), operator_keys[name].public_key) for name, roles in ROLES.items())
    ids = list(cosigners)
    tls = provision_cosigners(home, ids, CosignerPins(attestation_key, bytes(notices.key.verify_key),
                                                      notice_server.url, notice_max_age_s, operators))
    processes, ports = spawn_cosigners(home, ids)
    engine = make_engine(sqlite_url(home / "coordinator.db"))
    migrate(engine)
    clients = {cosigner: CosignerClient(cosigner, ports[cosigner], tls) for cosigner in ids}
    mpc = MpcCoordinator(engine, clients)
    return Cluster(home, hsm, attestation_key, notices, notice_server, processes, ports, tls, engine, mpc,
                   operator_keys, OperatorRegistry(operators))
