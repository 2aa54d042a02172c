"""A co-signer cluster for tests, the benchmark and the demo (never production): n real
`coffer cosigner` processes (FROST and DKLs23 engines) on loopback with mutual TLS, a pinned attestation HSM key, operators,
a halt-notice server and an `MpcCoordinator`. The coordinator's attestation key lives in a test
SoftHSM2 token; operator keys are fixed test keys."""

from __future__ import annotations

import hashlib
import itertools
import secrets
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
from coffer.layout import coordinator_tls
from coffer.mpc.service import CosignerClient, CosignerPins, MpcCoordinator, write_pins
from coffer.mpc.service.messages import Prevout, attest_publication
from coffer.mpc.service.server import cosigner_dir
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
from coffer.recon.notice import (
    NOTICE_TAG,
    RESUMES_IN_NOTICE_MAX,
    HaltNotice,
    NoticeIssuer,
    NoticeServer,
    ResumeProof,
    SignedNotice,
)
from coffer.testing import ServiceProcess, free_port, make_token, wait_until
from coffer.testing.governance import Quorum
from coffer.tls import TlsFiles

ROLES: dict[str, set[Role]] = {"ivan": {Role.INITIATOR}, "bob": {Role.APPROVER}, "carol": {Role.APPROVER},
                               "dave": {Role.SECURITY_OFFICER}}


class NoticeSource:
    """Stands in for the coordinator's notice issuer: fresh signed notices, halted or not.

    Setting `halted` true opens a new halt; setting it false resumes it with the officers' own
    signatures when a `quorum` is given (the honest path), else with none (what a compromised
    coordinator alone could do). `resumes` may also be set by hand to forge proofs."""

    def __init__(self, quorum: Quorum | None = None) -> None:
        self.key = SigningKey.generate()
        self.quorum = quorum
        self.halt_id: str | None = None
        self.resumes: list[ResumeProof] = []
        self.issuer: NoticeIssuer | None = None
        self._halts = itertools.count(1)
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def halted(self) -> bool:
        return self.halt_id is not None

    @halted.setter
    def halted(self, value: bool) -> None:
        with self._lock:
            if value and self.halt_id is None:
                self.halt_id = f"h-{next(self._halts)}"
            elif not value and self.halt_id is not None:
                if self.quorum is not None:
                    reason = "checked and cleared"
                    self.resumes.append(ResumeProof(self.halt_id, reason,
                                                    tuple(self.quorum.resume(self.halt_id, reason))))
                self.halt_id = None

    def issue(self) -> SignedNotice:
        if self.issuer is not None:  # a real coordinator's issuer (HaltSwitch + NoticeIssuer) in charge
            return self.issuer.issue()
        with self._lock:
            notice = HaltNotice("coordinator", self.halt_id is not None, self.halt_id, next(self._seq),
                                datetime.now(UTC), tuple(self.resumes[-RESUMES_IN_NOTICE_MAX:]))
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
    quorum: Quorum = field(default_factory=Quorum.generate)

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

    def fresh_spend(self, index: int, key_id: str = "hot-btc") -> tuple[bytes, list[Prevout],
                                                                         list[tuple[WithdrawalRequest, SignedDecision]]]:
        """A one-input spend of the key's P2TR output (a distinct prevout per `index`) paying one
        newly made and attested request: what each signature of the hot wallet really carries."""
        from embit.script import Script
        from embit.transaction import Transaction, TransactionInput, TransactionOutput

        from coffer.mpc.service.messages import address_script, p2tr_address, p2tr_script

        own = p2tr_script(self.mpc.key(key_id).taproot_output_key())
        destination = p2tr_address(bytes(range(32)))
        amount_sats = 10_000 + index % 1000
        request = self.request(destination, amount_sats)
        prevout_txid = hashlib.sha256(index.to_bytes(8, "big")).digest()
        tx = Transaction(version=2, vin=[TransactionInput(prevout_txid, 0, sequence=0xFFFFFFFD)],
                         vout=[TransactionOutput(amount_sats, Script(address_script(destination, "regtest"))),
                               TransactionOutput(989_000 - amount_sats, Script(own))])
        return bytes(tx.serialize()), [Prevout(1_000_000, own)], [(request, self.attest(request))]

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
                          workdir=cosigner_dir(home, cosigner), port=port, ready_timeout_s=180,
                          env={"PYTHONPATH": root} if module else None)


def provision_cosigners(home: Path, cosigners: Iterable[int], pins: CosignerPins, quorum: Quorum | None = None
                        ) -> TlsFiles:
    """Write each co-signer's pins (and the governance set of `quorum`) and make sure the coordinator's
    certificate exists (as `coffer init` does, the CA in the ceremony directory); returns the
    coordinator's TLS files."""
    tls = coordinator_tls(home)
    for cosigner in cosigners:
        write_pins(cosigner_dir(home, cosigner), pins)
        if quorum is not None:
            quorum.provision(cosigner_dir(home, cosigner))
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
        process.launch()
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
    quorum = Quorum.generate()
    notices = NoticeSource(quorum)
    notice_server = NoticeServer(notices).start()  # type: ignore[arg-type]  # duck-typed issuer
    operator_keys = {name: OperatorKey(bytes([index + 7]) * 32) for index, name in enumerate(ROLES)}
    operators = tuple(Operator(name, frozenset(roles), operator_keys[name].public_key) for name, roles in ROLES.items())
    ids = list(cosigners)
    tls = provision_cosigners(home, ids, CosignerPins(attestation_key, bytes(notices.key.verify_key),
                                                      notice_server.url, notice_max_age_s, operators), quorum)
    processes, ports = spawn_cosigners(home, ids)
    engine = make_engine(sqlite_url(home / "coordinator.db"))
    migrate(engine)
    clients = {cosigner: CosignerClient(cosigner, ports[cosigner], tls) for cosigner in ids}
    mpc = MpcCoordinator(engine, clients, approve=quorum.approve)
    return Cluster(home, hsm, attestation_key, notices, notice_server, processes, ports, tls, engine, mpc,
                   operator_keys, OperatorRegistry(operators), quorum)
