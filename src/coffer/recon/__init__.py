"""Reconciliation and the halt: the position and margin check, the on-chain check, the halt
switch with its signed notices and the fail-closed `HaltWatcher`, and the scheduler.

Pure checks: `check_positions` (columnar, numpy int64) and `check_onchain`. Storage and wiring:
`HaltSwitch`, `NoticeIssuer`, `HaltWatcher`, `Scheduler`, `Reconciler`, `PositionReconciler`.
"""

from coffer.recon.errors import (
    HaltInForce,
    HaltStateUnknown,
    InsufficientSignatures,
    InvalidCheckInput,
    InvalidNotice,
    InvalidOfficerSignature,
    NotHalted,
    OfficerExists,
    ReconError,
    ResumeRefused,
    UnknownOfficer,
    WrongHalt,
)
from coffer.recon.halt import Halt, HaltEvent, HaltState, HaltSwitch, OfficerSignature, resume_message
from coffer.recon.notice import (
    HaltNotice,
    HaltWatcher,
    NoticeIssuer,
    NoticeServer,
    SignedNotice,
    hsm_notice_signer,
    http_notice_fetcher,
    http_notice_pusher,
    push_hook,
)
from coffer.recon.onchain import (
    AssetLine,
    CustodyScript,
    Holding,
    HoldingColumns,
    InflightWithdrawal,
    OnchainCheckInput,
    OnchainCheckResult,
    PendingDeposit,
    WalletLine,
    check_onchain,
    holding_columns,
)
from coffer.recon.positions import (
    Mismatch,
    PositionCheckInput,
    PositionCheckResult,
    PositionColumns,
    Replay,
    check_positions,
    replay_fills,
)
from coffer.recon.runtime import ReconRuntime
from coffer.recon.scheduler import Job, JobOutcome, RunRecord, Scheduler, recent_runs
from coffer.recon.service import (
    ONCHAIN_JOB,
    POSITIONS_JOB,
    OnchainReport,
    PositionReconciler,
    Reconciler,
    bitcoin_holdings,
    ethereum_holdings,
    latest_onchain,
)
from coffer.recon.sources import OnchainSource, ledger_custody

__all__ = [
    "ReconError", "InvalidCheckInput", "HaltInForce", "HaltStateUnknown", "InvalidNotice", "ResumeRefused",
    "InsufficientSignatures", "InvalidOfficerSignature", "UnknownOfficer", "NotHalted", "WrongHalt",
    "OfficerExists",
    "HaltSwitch", "HaltState", "Halt", "HaltEvent", "OfficerSignature", "resume_message",
    "HaltNotice", "SignedNotice", "NoticeIssuer", "HaltWatcher", "NoticeServer", "http_notice_fetcher",
    "hsm_notice_signer", "http_notice_pusher", "push_hook", "ReconRuntime", "OnchainSource", "ledger_custody",
    "CustodyScript", "Holding", "HoldingColumns", "PendingDeposit", "InflightWithdrawal", "OnchainCheckInput",
    "OnchainCheckResult", "WalletLine", "AssetLine", "check_onchain", "holding_columns",
    "PositionColumns", "PositionCheckInput", "PositionCheckResult", "Mismatch", "Replay", "check_positions",
    "replay_fills",
    "Job", "JobOutcome", "RunRecord", "Scheduler", "recent_runs",
    "PositionReconciler", "Reconciler", "POSITIONS_JOB", "ONCHAIN_JOB", "OnchainReport", "latest_onchain",
    "bitcoin_holdings", "ethereum_holdings",
]
