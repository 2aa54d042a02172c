"""The halt switch: one durable flag that stops matching, withdrawals and every signature.

Any failed check or an officer sets it; only k distinct registered security officers, each with
an Ed25519 signature over (halt id, reason), lift it. State lives in the database (one row,
with a sequence number that grows on every change), so a restarted coordinator comes back
halted. Every halt and resume is an audit event written in the same transaction, then handed to
the hooks (mail to the security team, publication signature by the group key); a hook that
fails never undoes or delays the halt.

This module never trusts a caller's claim that checks passed: resuming is only by signatures.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from sqlalchemy.engine import Connection, Engine

from coffer.audit import AuditLog
from coffer.canonical import canonical_json
from coffer.invariant import unreachable
from coffer.log import get_logger
from coffer.recon.errors import (
    HaltInForce,
    InsufficientSignatures,
    InvalidOfficerSignature,
    NotHalted,
    OfficerExists,
    ReconError,
    ResumeRefused,
    UnknownOfficer,
    WrongHalt,
)
from coffer.recon.tables import halt_state, halts, officers

__all__ = [
    "HaltSwitch", "HaltState", "Halt", "HaltEvent", "OfficerSignature", "resume_message",
    "OFFICERS_MAX", "REASON_CHARS_MAX", "HaltHook", "PublicationSigner",
]

OFFICERS_MAX = 64
REASON_CHARS_MAX = 2000
DETAILS_CHARS_MAX = 200_000
CAUSE_CHARS_MAX = 40
TRIP_ATTEMPTS_MAX = 5
RESUME_TAG = b"coffer/recon/resume/v1\x00"
PUBLICATION_TAG = b"coffer/recon/halt-event/v1\x00"
_log = get_logger("coffer.recon.halt")


def _now() -> datetime:
    return datetime.now(UTC)


def resume_message(halt_id: str, reason: str) -> bytes:
    """The exact bytes each security officer signs to resume halt `halt_id` for `reason`."""
    return RESUME_TAG + canonical_json({"halt_id": halt_id, "reason": reason})


@dataclass(frozen=True, slots=True)
class OfficerSignature:
    officer_id: str
    signature: bytes

    def __repr__(self) -> str:
        return f"OfficerSignature(officer_id={self.officer_id!r})"


@dataclass(frozen=True, slots=True)
class HaltState:
    halted: bool
    halt_id: str | None
    seq: int
    updated_at: str


@dataclass(frozen=True, slots=True)
class Halt:
    halt_id: str
    cause: str
    details: Mapping[str, Any]
    set_by: str
    halted_at: str
    seq: int
    resumed_at: str | None = None
    resumed_by: str | None = None
    resume_reason: str | None = None
    resume_signers: tuple[str, ...] = ()
    resume_signatures: tuple[OfficerSignature, ...] = ()


@dataclass(frozen=True, slots=True)
class HaltEvent:
    """What the hooks receive: a halt or a resume, as published."""

    action: str
    halt_id: str
    seq: int
    at: str
    actor: str
    cause: str
    details: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None
    signers: tuple[str, ...] = ()

    def statement(self) -> bytes:
        """The bytes signed for publication (by the Ed25519 group key)."""
        return PUBLICATION_TAG + canonical_json({
            "action": self.action, "halt_id": self.halt_id, "seq": self.seq, "at": self.at,
            "actor": self.actor, "cause": self.cause, "details": dict(self.details),
            "reason": self.reason, "signers": list(self.signers)})


HaltHook = Callable[[HaltEvent], None]


class StateChanged(ReconError):
    """The halt state row changed between read and write (retried by `trip`)."""
PublicationSigner = Callable[[bytes], bytes]


class HaltSwitch:
    """The halt switch over `engine` (migrated). `quorum` officers of those registered resume."""

    def __init__(self, engine: Engine, *, quorum: int, audit: AuditLog | None = None,
                 hooks: Sequence[HaltHook] = (), publication_signer: PublicationSigner | None = None,
                 clock: Callable[[], datetime] = _now,
                 officer_keys: Callable[[], Mapping[str, bytes]] | None = None) -> None:
        """`officer_keys`, when given, replaces the recon_officers table as the registry of
        security officers' public keys (e.g. the policy part's operators with that role)."""
        if quorum < 1 or quorum > OFFICERS_MAX:
            raise ReconError(f"quorum must be 1..{OFFICERS_MAX}")
        self._engine = engine
        self.quorum = quorum
        self._audit = audit or AuditLog(engine)
        self._hooks = tuple(hooks)
        self._publication_signer = publication_signer
        self._clock = clock
        self._officer_keys = officer_keys

    # -- reading -----------------------------------------------------------------------------
    def state(self) -> HaltState:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(halt_state).where(halt_state.c.id == 1)).first()
        if row is None:
            # The migration writes the row; without it the state is unknown, so report halted.
            return HaltState(True, "state-unreadable", -1, "")
        return HaltState(bool(row.halted), row.halt_id, int(row.seq), row.updated_at)

    def is_halted(self) -> bool:
        return self.state().halted

    def require_clear(self) -> None:
        """Raise HaltInForce while the halt is in force."""
        state = self.state()
        if state.halted:
            raise HaltInForce(state.halt_id)

    def halt(self, halt_id: str) -> Halt:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(halts).where(halts.c.halt_id == halt_id)).first()
        if row is None:
            raise ReconError(f"no halt {halt_id!r}")
        return _halt_from_row(row)

    def resumed(self, *, limit: int) -> list[Halt]:
        """The newest resumed halts with their officers' signatures (carried in halt notices)."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(halts).where(halts.c.resumed_at.is_not(None))
                                .order_by(halts.c.seq.desc()).limit(limit)).all()
        return [_halt_from_row(row) for row in rows]

    def history(self, *, limit: int = 100) -> list[Halt]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(halts).order_by(halts.c.seq.desc()).limit(limit)).all()
        return [_halt_from_row(row) for row in rows]

    # -- officers ----------------------------------------------------------------------------
    def register_officer(self, officer_id: str, public_key: bytes, *, actor: str = "admin") -> None:
        """Register a security officer's Ed25519 public key (32 bytes)."""
        if not officer_id or len(officer_id) > 64:
            raise ReconError("officer id must be 1..64 characters")
        try:
            VerifyKey(bytes(public_key))
        except Exception:  # PyNaCl raises several types for a malformed key
            raise ReconError("officer public key must be 32 bytes of Ed25519") from None
        if len(public_key) != 32:
            raise ReconError("officer public key must be 32 bytes of Ed25519")
        at = self._clock()
        with self._engine.begin() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(officers)).scalar_one()
            if count >= OFFICERS_MAX:
                raise ReconError(f"at most {OFFICERS_MAX} officers")
            clash = conn.execute(sa.select(officers.c.officer_id).where(
                (officers.c.officer_id == officer_id) | (officers.c.public_key == public_key.hex()))).first()
            if clash is not None:
                raise OfficerExists(f"officer {officer_id!r} or that key is registered already")
            conn.execute(officers.insert().values(officer_id=officer_id, public_key=public_key.hex(),
                                                  registered_at=at.isoformat()))
            self._audit.append(actor, "recon.officer.registered", {"officer_id": officer_id,
                                                                   "public_key": public_key.hex()},
                               at=at, connection=conn)

    def officers(self) -> dict[str, bytes]:
        if self._officer_keys is not None:
            return {str(k): bytes(v) for k, v in self._officer_keys().items()}
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(officers.c.officer_id, officers.c.public_key)).all()
        return {row.officer_id: bytes.fromhex(row.public_key) for row in rows}

    # -- halting -----------------------------------------------------------------------------
    def trip(self, cause: str, details: Mapping[str, Any], *, actor: str) -> Halt:
        """Set the halt (a failed check, or an officer by hand). Idempotent while halted: the
        halt in force stays, and the further cause is recorded as an audit event. A busy
        database is retried (bounded): setting the halt must not give up easily."""
        if not cause or len(cause) > CAUSE_CHARS_MAX:
            raise ReconError(f"cause must be 1..{CAUSE_CHARS_MAX} characters")
        details_json = canonical_json(dict(details)).decode()
        if len(details_json) > DETAILS_CHARS_MAX:
            details_json = canonical_json({"truncated": details_json[:DETAILS_CHARS_MAX]}).decode()
        for attempt in range(TRIP_ATTEMPTS_MAX):
            try:
                return self._trip_once(cause, details_json, actor)
            except (sa.exc.OperationalError, StateChanged):
                if attempt == TRIP_ATTEMPTS_MAX - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        unreachable("the loop returns or raises")

    def _trip_once(self, cause: str, details_json: str, actor: str) -> Halt:
        at = self._clock().isoformat()
        with self._engine.begin() as conn:
            state = self._locked_state(conn)
            if state.halted and state.halt_id is not None:
                self._audit.append(actor, "recon.halt.repeat", {"halt_id": state.halt_id, "cause": cause,
                                                                "details": json.loads(details_json)},
                                   at=self._clock(), connection=conn)
                return self._halt_in(conn, state.halt_id)
            halt_id = uuid.uuid4().hex
            seq = state.seq + 1
            conn.execute(halts.insert().values(halt_id=halt_id, cause=cause, details=details_json, set_by=actor,
                                               halted_at=at, seq=seq))
            self._set_state(conn, state.seq, seq, True, halt_id, at)
            self._audit.append(actor, "recon.halt", {"halt_id": halt_id, "cause": cause, "seq": seq,
                                                     "details": json.loads(details_json)},
                               at=self._clock(), connection=conn)
            halt = self._halt_in(conn, halt_id)
        _log.warning("recon.halt", halt_id=halt_id, cause=cause, actor=actor, seq=seq)
        event = HaltEvent("halt", halt_id, seq, at, actor, cause, json.loads(details_json))
        self._after(event, halts.c.publication_signature)
        return halt

    def _locked_state(self, conn: Connection) -> HaltState:
        query = sa.select(halt_state).where(halt_state.c.id == 1)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        else:
            # SQLite: write first, so this transaction holds the write lock before it reads and
            # a concurrent writer waits instead of failing on a stale read.
            conn.execute(halt_state.update().where(halt_state.c.id == 1).values(seq=halt_state.c.seq))
        row = conn.execute(query).first()
        if row is None:
            conn.execute(halt_state.insert().values(id=1, seq=0, halted=False, halt_id=None,
                                                    updated_at=self._clock().isoformat()))
            return HaltState(False, None, 0, "")
        return HaltState(bool(row.halted), row.halt_id, int(row.seq), row.updated_at)

    @staticmethod
    def _set_state(conn: Connection, old_seq: int, seq: int, halted: bool, halt_id: str | None, at: str) -> None:
        result = conn.execute(halt_state.update().where((halt_state.c.id == 1) & (halt_state.c.seq == old_seq))
                              .values(seq=seq, halted=halted, halt_id=halt_id, updated_at=at))
        if result.rowcount != 1:
            raise StateChanged("halt state changed concurrently; retry")

    @staticmethod
    def _halt_in(conn: Connection, halt_id: str) -> Halt:
        row = conn.execute(sa.select(halts).where(halts.c.halt_id == halt_id)).first()
        if row is None:
            raise ReconError(f"no halt {halt_id!r}")
        return _halt_from_row(row)

    # -- resuming ----------------------------------------------------------------------------
    def verify_resume(self, halt_id: str, reason: str, signatures: Sequence[OfficerSignature]) -> tuple[str, ...]:
        """The distinct officers whose signatures over (halt_id, reason) verify; raises when the
        set is short of the quorum, names an unknown officer, or holds a bad signature."""
        if not reason or len(reason) > REASON_CHARS_MAX:
            raise ResumeRefused(f"a reason of 1..{REASON_CHARS_MAX} characters is required")
        registered = self.officers()
        unknown = [s.officer_id for s in signatures if s.officer_id not in registered]
        if unknown:
            raise UnknownOfficer(unknown)
        message = resume_message(halt_id, reason)
        bad: list[str] = []
        valid: set[str] = set()
        for item in signatures:
            try:
                VerifyKey(registered[item.officer_id]).verify(message, bytes(item.signature))
            except (BadSignatureError, ValueError, TypeError):
                bad.append(item.officer_id)
                continue
            valid.add(item.officer_id)
        if bad:
            raise InvalidOfficerSignature(bad)
        required = self.quorum
        if len(valid) < required:
            raise InsufficientSignatures(valid=len(valid), required=required)
        return tuple(sorted(valid))

    def resume(self, halt_id: str, reason: str, signatures: Sequence[OfficerSignature], *, actor: str) -> HaltState:
        """Lift halt `halt_id` with k-of-n officer signatures; a refusal is audited and changes nothing."""
        try:
            signers = self.verify_resume(halt_id, reason, signatures)
            at = self._clock().isoformat()
            with self._engine.begin() as conn:
                state = self._locked_state(conn)
                if not state.halted:
                    raise NotHalted("no halt is in force")
                if state.halt_id != halt_id:
                    raise WrongHalt(f"halt in force is {state.halt_id}, not {halt_id}")
                seq = state.seq + 1
                conn.execute(halts.update().where(halts.c.halt_id == halt_id).values(
                    resumed_at=at, resumed_by=actor, resume_reason=reason,
                    resume_signatures=json.dumps({s.officer_id: bytes(s.signature).hex() for s in signatures
                                                  if s.officer_id in signers}, sort_keys=True)))
                self._set_state(conn, state.seq, seq, False, None, at)
                self._audit.append(actor, "recon.resume", {"halt_id": halt_id, "reason": reason, "seq": seq,
                                                           "signers": list(signers)},
                                   at=self._clock(), connection=conn)
                cause = str(conn.execute(sa.select(halts.c.cause).where(halts.c.halt_id == halt_id)).scalar())
        except ResumeRefused as exc:
            self._audit.append(actor, "recon.resume.refused", {"halt_id": halt_id, "error": type(exc).__name__,
                                                               "message": str(exc)}, at=self._clock())
            raise
        _log.warning("recon.resume", halt_id=halt_id, actor=actor, seq=seq, signers=list(signers))
        self._after(HaltEvent("resume", halt_id, seq, at, actor, cause, {}, reason, signers),
                    halts.c.resume_publication_signature)
        return HaltState(False, None, seq, at)

    # -- after the commit --------------------------------------------------------------------
    def _after(self, event: HaltEvent, signature_column: sa.Column[Any]) -> None:
        if self._publication_signer is not None:
            try:
                signature = self._publication_signer(event.statement())
                with self._engine.begin() as conn:
                    conn.execute(halts.update().where(halts.c.halt_id == event.halt_id)
                                 .values({signature_column.name: bytes(signature).hex()}))
            except Exception as exc:  # a failing publication must never undo the halt
                self._hook_failed(event, "publication_signer", exc)
        for hook in self._hooks:
            try:
                hook(event)
            except Exception as exc:  # a failing mail must never undo the halt
                self._hook_failed(event, getattr(hook, "__name__", type(hook).__name__), exc)

    def _hook_failed(self, event: HaltEvent, hook: str, exc: Exception) -> None:
        _log.error("recon.halt.hook_failed", halt_id=event.halt_id, hook=hook, error=type(exc).__name__)
        try:
            self._audit.append("recon", "recon.halt.hook_failed", {"halt_id": event.halt_id, "action": event.action,
                                                                   "hook": hook, "error": type(exc).__name__},
                               at=self._clock())
        except Exception:  # noqa: S110 - the audit failure is logged above; the halt stands
            pass

    def publication_signature(self, halt_id: str, action: str = "halt") -> bytes | None:
        column = halts.c.publication_signature if action == "halt" else halts.c.resume_publication_signature
        with self._engine.connect() as conn:
            value = conn.execute(sa.select(column).where(halts.c.halt_id == halt_id)).scalar()
        return None if value is None else bytes.fromhex(str(value))


def _halt_from_row(row: Any) -> Halt:
    signatures = json.loads(row.resume_signatures) if row.resume_signatures else {}
    return Halt(row.halt_id, row.cause, json.loads(row.details), row.set_by, row.halted_at, int(row.seq),
                row.resumed_at, row.resumed_by, row.resume_reason, tuple(sorted(signatures)),
                tuple(OfficerSignature(str(i), bytes.fromhex(str(v))) for i, v in sorted(signatures.items())))
