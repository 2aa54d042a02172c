"""Policy, approvals and segregation of duties, with HSM-attested decisions every signer re-checks.

Pure core: `WithdrawalRequest` (canonical document and digest), `Approval` (an operator's
signature bound to one request, role and expiry; `ApprovalVerifier` per scheme), the Cedar policy
(`default_policy()`, `compile_policy()`) and `CompiledPolicy.decide(request, context, now)`.
Around it: `attest_decision` / `verify_attestation` (the coordinator's HSM signs allowed
decisions), `SignerGuard` (run by every cold signer and MPC co-signer before signing), policy
version quorum (`check_quorum`), HSM-signed audit checkpoints, and `PolicyService` (storage).
"""

from datetime import datetime

from coffer.policy.approval import (
    Approval,
    ApprovalVerifier,
    Ed25519ApprovalVerifier,
    VerifiedApproval,
    approval_message,
    check_initiator,
    default_verifiers,
    parse_approval,
    sign_approval,
    verify_approvals,
)
from coffer.policy.attestation import (
    ATTESTATION_KEY_LABEL,
    AttestedFacts,
    DecisionStatement,
    SignedDecision,
    attest_decision,
    ensure_attestation_key,
    parse_signed_decision,
    signed_decision_from_json,
    verify_attestation,
)
from coffer.policy.checkpoint import AuditCheckpoint, sign_checkpoint, verify_checkpoint
from coffer.policy.engine import (
    ApprovalRequirement,
    CompiledPolicy,
    Decision,
    DecisionContext,
    PastTransfer,
    Route,
    compile_policy,
    default_policy,
    epoch_s,
)
from coffer.policy.errors import (
    AlreadySigned,
    ApprovalRefused,
    ApprovalsMissing,
    AttestationRefused,
    MalformedDocument,
    MalformedPolicy,
    PolicyError,
    PolicyQuorumRefused,
    PolicyRefused,
    SegregationOfDuties,
)
from coffer.policy.guard import (
    Clearance,
    MemorySignedHistory,
    SignedHistory,
    SignerGuard,
    SqliteSignedHistory,
    guarded_sign,
)
from coffer.policy.request import RequestKind, WithdrawalRequest, new_nonce, parse_request, request_from_json
from coffer.policy.roles import Operator, OperatorKey, OperatorRegistry, Role, generate_operator_key
from coffer.policy.versions import AdminSignature, PolicyProposal, check_quorum, sign_activation

__all__ = [
    "Approval", "ApprovalVerifier", "Ed25519ApprovalVerifier", "VerifiedApproval", "approval_message",
    "check_initiator", "default_verifiers", "parse_approval", "sign_approval", "verify_approvals",
    "ATTESTATION_KEY_LABEL", "AttestedFacts", "DecisionStatement", "SignedDecision", "attest_decision",
    "ensure_attestation_key", "parse_signed_decision", "signed_decision_from_json", "verify_attestation",
    "AuditCheckpoint", "sign_checkpoint", "verify_checkpoint",
    "ApprovalRequirement", "CompiledPolicy", "Decision", "DecisionContext", "PastTransfer", "Route",
    "compile_policy", "default_policy", "epoch_s", "decide",
    "AlreadySigned", "ApprovalRefused", "ApprovalsMissing", "AttestationRefused", "MalformedDocument",
    "MalformedPolicy", "PolicyError", "PolicyQuorumRefused", "PolicyRefused", "SegregationOfDuties",
    "Clearance", "MemorySignedHistory", "SignedHistory", "SignerGuard", "SqliteSignedHistory", "guarded_sign",
    "RequestKind", "WithdrawalRequest", "new_nonce", "parse_request", "request_from_json",
    "Operator", "OperatorKey", "OperatorRegistry", "Role", "generate_operator_key",
    "AdminSignature", "PolicyProposal", "check_quorum", "sign_activation",
]


def decide(request: WithdrawalRequest, context: DecisionContext, now: datetime,
           policy: CompiledPolicy | None = None) -> Decision:
    """`decide(request, context, now)` under `policy` (default: the shipped default policy set)."""
    return (policy or default_policy()).decide(request, context, now)

