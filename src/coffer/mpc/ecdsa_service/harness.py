"""An ECDSA co-signer cluster for tests and the benchmark (never production): n real
`coffer cosigner` processes on loopback with mutual TLS, pinned attestation HSM key and
operators, a halt-notice server and an `EcdsaCoordinator`. Operator keys are fixed test keys."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coffer.hsm import Hsm
from coffer.layout import coordinator_tls
from coffer.mpc.ecdsa_service.coordinator import EcdsaCoordinator
from coffer.mpc.ecdsa_service.server import write_chain_pins
from coffer.mpc.service.client import CosignerClient
from coffer.mpc.service.harness import ROLES, NoticeSource, cosigner_argv, spawn_cosigners
from coffer.mpc.service.pins import CosignerPins, write_pins
from coffer.mpc.service.server import cosigner_dir
from coffer.policy import (
    Approval,
    AttestedFacts,
    DecisionContext,
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
    sign_approval,
    verify_approvals,
)
from coffer.recon.notice import NoticeServer
from coffer.testing import ServiceProcess, make_token
from coffer.testing.governance import Quorum
from coffer.tls import TlsFiles

__all__ = ["EcdsaCluster", "start_ecdsa_cluster", "HOT_BALANCE_WEI", "TEST_CHAIN_IDS"]

HOT_BALANCE_WEI = 50 * 10**18
# py-evm (eth-tester) default, hardhat's dev chain, and the id the service tests use
TEST_CHAIN_IDS = [131277322940537, 31337, 1337]
ENGINES = ("ecdsa",)  # the DKLs23 engine alone: these tests need no FROST


@dataclass
class EcdsaCluster:
    home: Path
    hsm: Hsm
    attestation_key: bytes
    notices: NoticeSource
    notice_server: NoticeServer
    processes: dict[int, ServiceProcess]
    ports: dict[int, int]
    tls: TlsFiles
    coordinator: EcdsaCoordinator
    operator_keys: dict[str, OperatorKey] = field(default_factory=dict)
    registry: OperatorRegistry | None = None
    quorum: Quorum = field(default_factory=Quorum.generate)

    def process(self, cosigner: int, module: str | None = None) -> ServiceProcess:
        """`module`: run another entry point (a test's misbehaving co-signer) with the same arguments."""
        root = str(Path(__file__).resolve().parents[4])
        return ServiceProcess(f"cosigner-{cosigner}", cosigner_argv(self.home, cosigner, self.ports[cosigner],
                                                                    engines=ENGINES, module=module),
                              workdir=cosigner_dir(self.home, cosigner), port=self.ports[cosigner],
                              env={"PYTHONPATH": root}, ready_timeout_s=60)

    def kill(self, cosigner: int) -> None:
        self.processes[cosigner].kill()

    def restart(self, cosigner: int, *, module: str | None = None) -> None:
        self.processes[cosigner].kill()
        self.processes[cosigner] = self.process(cosigner, module).start()

    def request(self, destination: str, amount_wei: int, *, kind: RequestKind = RequestKind.CLIENT_WITHDRAWAL,
                account: str = "acct1") -> WithdrawalRequest:
        now_s = int(datetime.now(UTC).timestamp())
        return WithdrawalRequest(kind=kind, asset="ETH", amount_minor=amount_wei, destination=destination,
                                 source_wallet="hot", account=account if kind is RequestKind.CLIENT_WITHDRAWAL
                                 else "company", fee_policy="normal", nonce=new_nonce(), expires_at_s=now_s + 3600,
                                 initiator=f"client:{account}" if kind is RequestKind.CLIENT_WITHDRAWAL else "ivan")

    def attest(self, request: WithdrawalRequest, *, hot_balance_wei: int = HOT_BALANCE_WEI) -> SignedDecision:
        """The honest coordinator: decide with the policy, then have the HSM attest."""
        now = datetime.now(UTC)
        now_s = int(now.timestamp())
        assert self.registry is not None
        approvals: tuple[Approval, ...] = ()
        if request.kind is not RequestKind.CLIENT_WITHDRAWAL:
            approvals = tuple(sign_approval(self.operator_keys[name], request=request, operator_id=name,
                                            role=Role.APPROVER, expires_at_s=now_s + 600) for name in ("bob", "carol"))
        verified = verify_approvals(request, approvals, self.registry, now_s=now_s)
        context = DecisionContext(halted=False, account_frozen=False, whitelisted_at_s=now_s - 3 * 86400,
                                  hot_balance_minor=hot_balance_wei, approvals=verified)
        decision = default_policy().decide(request, context, now)
        assert decision.allowed, decision
        return attest_decision(self.hsm, request, decision, approvals,
                               AttestedFacts(False, now_s - 3 * 86400, hot_balance_wei), now_s=now_s)

    def status(self, cosigner: int) -> dict[str, Any]:
        return CosignerClient(cosigner, self.ports[cosigner], self.tls, batching=False).call("/v1/ecdsa/status", {})

    def stop(self) -> None:
        self.coordinator.close()
        for process in self.processes.values():
            process.stop()
        self.notice_server.stop()
        self.hsm.close()


def start_ecdsa_cluster(home: Path, cosigners: Iterable[int] = range(1, 4), *, notice_max_age_s: int = 4,
                        modules: dict[int, str] | None = None,
                        chain_ids: Sequence[int] = tuple(TEST_CHAIN_IDS)) -> EcdsaCluster:
    """Provision and start the co-signers together (their import times overlap)."""
    home.mkdir(parents=True, exist_ok=True)
    tls = coordinator_tls(home)
    hsm = make_token(f"ecdsa-coord-{secrets.token_hex(4)}").open()
    attestation_key = ensure_attestation_key(hsm)
    quorum = Quorum.generate()
    notices = NoticeSource(quorum)
    notice_server = NoticeServer(notices).start()  # type: ignore[arg-type]  # duck-typed issuer
    operator_keys = {name: OperatorKey(bytes([index + 7]) * 32) for index, name in enumerate(ROLES)}
    operators = tuple(Operator(name, frozenset(roles), operator_keys[name].public_key) for name, roles in ROLES.items())
    ids: Sequence[int] = list(cosigners)
    for cosigner in ids:
        write_pins(cosigner_dir(home, cosigner), CosignerPins(
            attestation_key, bytes(notices.key.verify_key), notice_server.url, notice_max_age_s, operators))
        quorum.provision(cosigner_dir(home, cosigner))
        write_chain_pins(home, cosigner, list(chain_ids))
    processes, ports = spawn_cosigners(home, ids, engines=ENGINES, modules=modules, timeout_s=90)
    clients = {cosigner: CosignerClient(cosigner, ports[cosigner], tls, batching=False) for cosigner in ids}
    return EcdsaCluster(home, hsm, attestation_key, notices, notice_server, processes, ports, tls,
                        EcdsaCoordinator(clients, approve=quorum.approve), operator_keys,
                        OperatorRegistry(operators), quorum)
