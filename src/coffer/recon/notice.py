"""Signed halt notices, and the `HaltWatcher` every signer and co-signer runs before it signs.

The coordinator issues a notice (halt state, state sequence, time of issue) signed by its HSM
Ed25519 key; it pushes notices and also serves them for polling. A watcher verifies each against
the coordinator's pinned public key and keeps the newest. It lets a signature through only when
it holds a verified notice that says "not halted" and was issued less than `max_age_s` ago;
anything else (no notice, stale notice, halted, fetch failing) refuses: fail closed.

A notice can be replayed but never rolled back: a watcher refuses one with a lower sequence or an
older time of issue than the newest it accepted, and freshness bounds how long an old "clear"
notice could help anybody.

The coordinator's notice alone can halt but never resume: a key holder that pinned its officers
(`HaltWatcher.pin_officers`) remembers every halt it saw, durably, and accepts a "not halted"
notice only when the notice carries, for each of them, the resume signatures of k officers it
pinned itself (`ResumeProof`, the officers' own signatures over the halt id and reason).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from coffer.canonical import canonical_json
from coffer.log import get_logger
from coffer.recon.errors import HaltInForce, HaltStateUnknown, InvalidNotice
from coffer.recon.halt import HaltSwitch, OfficerSignature, resume_message

__all__ = [
    "HaltNotice", "SignedNotice", "NoticeIssuer", "HaltWatcher", "NoticeServer", "http_notice_fetcher",
    "push_hook", "http_notice_pusher", "PUSH_TARGETS_MAX",
    "hsm_notice_signer", "NOTICE_TAG", "NOTICE_BYTES_MAX", "NOTICE_PATH", "FETCH_TIMEOUT_S",
    "ResumeProof", "OfficerGate", "verify_resume_proof", "RESUMES_IN_NOTICE_MAX",
]

NOTICE_TAG = b"coffer/recon/halt-notice/v1\x00"
NOTICE_BYTES_MAX = 64 * 1024
RESUMES_IN_NOTICE_MAX = 8
NOTICE_PATH = "/halt/notice"
FETCH_TIMEOUT_S = 2.0
FUTURE_SKEW_S = 5.0
PUSH_TARGETS_MAX = 64
_FIELDS = ("coordinator", "halt_id", "halted", "issued_at", "resumes", "seq")
_log = get_logger("coffer.recon.notice")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ResumeProof:
    """The officers' own signatures resuming one halt, carried inside later notices."""

    halt_id: str
    reason: str
    signatures: tuple[OfficerSignature, ...]

    def to_json(self) -> dict[str, Any]:
        return {"halt_id": self.halt_id, "reason": self.reason,
                "signatures": {s.officer_id: bytes(s.signature).hex() for s in self.signatures}}

    @classmethod
    def from_json(cls, data: object) -> ResumeProof:
        if not isinstance(data, dict) or set(data) != {"halt_id", "reason", "signatures"}:
            raise InvalidNotice("a resume proof has exactly halt_id, reason and signatures")
        halt_id, reason, signatures = data["halt_id"], data["reason"], data["signatures"]
        if not isinstance(halt_id, str) or not isinstance(reason, str) or not isinstance(signatures, dict):
            raise InvalidNotice("a resume proof's fields have the wrong types")
        try:
            return cls(halt_id, reason, tuple(OfficerSignature(str(i), bytes.fromhex(str(v)))
                                              for i, v in sorted(signatures.items())))
        except ValueError:
            raise InvalidNotice("resume signatures must be hex") from None


@dataclass(frozen=True, slots=True)
class HaltNotice:
    coordinator: str
    halted: bool
    halt_id: str | None
    seq: int
    issued_at: datetime
    resumes: tuple[ResumeProof, ...] = field(default=())

    def payload(self) -> bytes:
        return canonical_json({"coordinator": self.coordinator, "halt_id": self.halt_id, "halted": self.halted,
                               "issued_at": self.issued_at.isoformat(), "seq": self.seq,
                               "resumes": [r.to_json() for r in self.resumes]})

    @classmethod
    def parse(cls, payload: bytes) -> HaltNotice:
        """Strict: canonical JSON, exactly the five fields, each of its type."""
        if len(payload) > NOTICE_BYTES_MAX:
            raise InvalidNotice("notice too large")
        try:
            data = json.loads(payload.decode("ascii"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InvalidNotice("notice is not JSON") from None
        if not isinstance(data, dict) or tuple(sorted(data)) != _FIELDS:
            raise InvalidNotice("notice fields must be exactly " + ", ".join(_FIELDS))
        halted, seq, halt_id = data["halted"], data["seq"], data["halt_id"]
        if not isinstance(halted, bool) or isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise InvalidNotice("halted must be a boolean and seq a non-negative integer")
        if not (halt_id is None or isinstance(halt_id, str)) or (halted and not halt_id):
            raise InvalidNotice("halt_id must name the halt in force")
        if not isinstance(data["coordinator"], str) or not isinstance(data["issued_at"], str):
            raise InvalidNotice("coordinator and issued_at must be strings")
        try:
            issued_at = datetime.fromisoformat(data["issued_at"])
        except ValueError:
            raise InvalidNotice("issued_at is not an ISO time") from None
        if issued_at.tzinfo is None:
            raise InvalidNotice("issued_at must carry a time zone")
        resumes = data["resumes"]
        if not isinstance(resumes, list) or len(resumes) > RESUMES_IN_NOTICE_MAX:
            raise InvalidNotice(f"resumes must be a list of at most {RESUMES_IN_NOTICE_MAX}")
        notice = cls(data["coordinator"], halted, halt_id, seq, issued_at,
                     tuple(ResumeProof.from_json(r) for r in resumes))
        if notice.payload() != payload:
            raise InvalidNotice("notice is not in canonical form")
        return notice


@dataclass(frozen=True, slots=True)
class SignedNotice:
    payload: bytes
    signature: bytes

    def to_json(self) -> dict[str, str]:
        return {"notice": self.payload.decode("ascii"), "signature": self.signature.hex()}

    @classmethod
    def from_json(cls, data: object) -> SignedNotice:
        if not isinstance(data, Mapping) or set(data) != {"notice", "signature"}:
            raise InvalidNotice("expected exactly {notice, signature}")
        notice, signature = data["notice"], data["signature"]
        if not isinstance(notice, str) or not isinstance(signature, str):
            raise InvalidNotice("notice and signature must be strings")
        try:
            return cls(notice.encode("ascii"), bytes.fromhex(signature))
        except (UnicodeEncodeError, ValueError):
            raise InvalidNotice("notice must be ASCII and signature hex") from None


def hsm_notice_signer(hsm: Any, label: str) -> Callable[[bytes], bytes]:
    """Sign notices with the Ed25519 key `label` inside the coordinator's HSM (coffer.hsm.Hsm)."""
    def sign(message: bytes) -> bytes:
        return bytes(hsm.sign(label, message))

    return sign


class NoticeIssuer:
    """Issues fresh signed notices of `switch`'s current state."""

    def __init__(self, switch: HaltSwitch, sign: Callable[[bytes], bytes], *, coordinator: str = "coordinator",
                 clock: Callable[[], datetime] = _now) -> None:
        self._switch = switch
        self._sign = sign
        self._coordinator = coordinator
        self._clock = clock

    def issue(self) -> SignedNotice:
        state = self._switch.state()
        resumes = tuple(ResumeProof(h.halt_id, h.resume_reason or "", h.resume_signatures)
                        for h in self._switch.resumed(limit=RESUMES_IN_NOTICE_MAX))
        notice = HaltNotice(self._coordinator, state.halted, state.halt_id, max(state.seq, 0), self._clock(),
                            resumes)
        payload = notice.payload()
        return SignedNotice(payload, self._sign(NOTICE_TAG + payload))


Fetch = Callable[[], SignedNotice]


class OfficerGate(Protocol):
    """A key holder's own record: its pinned officers and the halts it saw not yet resumed."""

    def officers(self) -> tuple[Mapping[str, bytes], int]: ...

    def unresolved_halts(self) -> frozenset[str]: ...

    def note_halt(self, halt_id: str) -> None: ...

    def resolve_halt(self, halt_id: str) -> None: ...


def verify_resume_proof(proof: ResumeProof, officers: Mapping[str, bytes], quorum: int) -> tuple[str, ...]:
    """The distinct pinned officers whose signatures over (halt id, reason) verify; raises
    InvalidNotice when they are fewer than `quorum` (unknown officers never count)."""
    message = resume_message(proof.halt_id, proof.reason)
    valid: set[str] = set()
    for item in proof.signatures:
        key = officers.get(item.officer_id)
        if key is None:
            continue
        try:
            VerifyKey(key).verify(message, bytes(item.signature))
        except (BadSignatureError, ValueError, TypeError):
            continue
        valid.add(item.officer_id)
    if len(valid) < quorum:
        raise InvalidNotice(f"resume of halt {proof.halt_id} has {len(valid)} pinned officer signatures, "
                            f"needs {quorum}")
    return tuple(sorted(valid))


class HaltWatcher:
    """Client side: verifies notices against the pinned key; `require_clear()` before any signature."""

    def __init__(self, pinned_public_key: bytes, *, max_age_s: float, fetch: Fetch | None = None,
                 clock: Callable[[], datetime] = _now, future_skew_s: float = FUTURE_SKEW_S) -> None:
        if max_age_s <= 0:
            raise ValueError("max_age_s must be positive")
        self._key = VerifyKey(bytes(pinned_public_key))
        self._max_age = timedelta(seconds=max_age_s)
        self._skew = timedelta(seconds=future_skew_s)
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: HaltNotice | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._officers: OfficerGate | None = None

    def pin_officers(self, gate: OfficerGate) -> None:
        """From now on a "not halted" notice needs k pinned officers' resume of every halt seen.
        A notice accepted before this call is judged again (fail closed)."""
        with self._lock:
            self._officers = gate
            if self._latest is not None:
                try:
                    self._check_officers(self._latest)
                except Exception:  # the notice held so far does not pass: hold none (fail closed)
                    self._latest = None

    def _check_officers(self, notice: HaltNotice) -> None:
        gate = self._officers
        if gate is None:
            return
        unresolved = set(gate.unresolved_halts())
        if unresolved:
            officers, quorum = gate.officers()
            for proof in notice.resumes:
                if proof.halt_id in unresolved:
                    try:
                        verify_resume_proof(proof, officers, quorum)
                    except InvalidNotice:
                        _log.warning("recon.halt_watcher.resume_refused", halt_id=proof.halt_id)
                        continue
                    gate.resolve_halt(proof.halt_id)
                    unresolved.discard(proof.halt_id)
        if notice.halted and notice.halt_id:
            gate.note_halt(notice.halt_id)
        elif unresolved:
            raise InvalidNotice(f"not halted, but no quorum of pinned officers resumed halt(s) {sorted(unresolved)}")

    @property
    def latest(self) -> HaltNotice | None:
        with self._lock:
            return self._latest

    def receive(self, signed: SignedNotice) -> HaltNotice:
        """Verify a pushed or fetched notice and keep it if it is the newest; raises InvalidNotice."""
        try:
            self._key.verify(NOTICE_TAG + signed.payload, signed.signature)
        except (BadSignatureError, ValueError, TypeError):
            raise InvalidNotice("notice signature does not verify against the pinned key") from None
        notice = HaltNotice.parse(signed.payload)
        if notice.issued_at > self._clock() + self._skew:
            raise InvalidNotice("notice issued in the future")
        with self._lock:
            latest = self._latest
            if latest is not None and (notice.seq < latest.seq or notice.issued_at < latest.issued_at):
                raise InvalidNotice(f"notice rolls back: seq {notice.seq} after {latest.seq}")
            self._check_officers(notice)
            self._latest = notice
        return notice

    def poll(self) -> HaltNotice | None:
        """Fetch and receive one notice; failures are remembered, never raised (the state ages)."""
        if self._fetch is None:
            return None
        try:
            notice = self.receive(self._fetch())
        except Exception as exc:  # any failure to learn the state counts the same: it ages out
            self.last_error = f"{type(exc).__name__}: {exc}"
            _log.warning("recon.halt_watcher.poll_failed", error=type(exc).__name__)
            return None
        self.last_error = None
        return notice

    def require_clear(self) -> None:
        """Raise HaltInForce (halted) or HaltStateUnknown (no fresh notice); return when clear."""
        with self._lock:
            latest = self._latest
        if latest is None:
            raise HaltStateUnknown("no halt notice received yet: refusing")
        if latest.halted:
            raise HaltInForce(latest.halt_id)
        age = self._clock() - latest.issued_at
        if age > self._max_age:
            raise HaltStateUnknown(f"newest halt notice is {age.total_seconds():.1f}s old "
                                   f"(bound {self._max_age.total_seconds():.1f}s): refusing")

    def clear(self) -> bool:
        try:
            self.require_clear()
        except (HaltInForce, HaltStateUnknown):
            return False
        return True

    def start(self, interval_s: float) -> HaltWatcher:
        """Poll every `interval_s` in a daemon thread until `stop()`."""
        if self._thread is not None:
            return self
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                self.poll()
                self._stop.wait(interval_s)

        self._thread = threading.Thread(target=loop, name="halt-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def http_notice_fetcher(url: str, *, timeout_s: float = FETCH_TIMEOUT_S) -> Fetch:
    """GET `url` (the coordinator's notice endpoint) and parse the signed notice."""
    if not url.startswith(("http://", "https://")):
        raise InvalidNotice("the notice URL must be http:// or https://")

    def fetch() -> SignedNotice:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - configured URL
            body = response.read(NOTICE_BYTES_MAX * 2 + 1)
        if len(body) > NOTICE_BYTES_MAX * 2:
            raise InvalidNotice("notice response too large")
        return SignedNotice.from_json(json.loads(body))

    return fetch


def http_notice_pusher(url: str, *, timeout_s: float = FETCH_TIMEOUT_S) -> Callable[[SignedNotice], None]:
    """POST a signed notice (its JSON form) to a signer's or co-signer's notice endpoint."""
    if not url.startswith(("http://", "https://")):
        raise InvalidNotice("the push URL must be http:// or https://")

    def push(signed: SignedNotice) -> None:
        body = json.dumps(signed.to_json()).encode()
        request = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 - scheme checked
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            response.read(1024)

    return push


def push_hook(issuer: NoticeIssuer, targets: Sequence[Callable[[SignedNotice], None]]) -> Callable[[Any], None]:
    """A HaltSwitch hook that pushes a fresh signed notice to every target after each halt and
    resume. A target that cannot be reached is skipped: it polls, and fails closed on its own."""
    if len(targets) > PUSH_TARGETS_MAX:
        raise InvalidNotice(f"at most {PUSH_TARGETS_MAX} push targets")
    chosen = tuple(targets)

    def hook(_event: Any) -> None:
        signed = issuer.issue()
        for target in chosen:
            try:
                target(signed)
            except Exception as exc:  # one unreachable signer must not stop the push to the others
                _log.warning("recon.notice.push_failed", error=type(exc).__name__)

    return hook


class NoticeServer:
    """A minimal HTTP endpoint serving fresh notices at NOTICE_PATH (for tests, the simulator and
    stand-alone use; the coordinator's web app serves the same JSON)."""

    def __init__(self, issuer: NoticeIssuer, *, host: str = "127.0.0.1", port: int = 0) -> None:
        issue = issuer.issue

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path != NOTICE_PATH:
                    self.send_error(404)
                    return
                try:
                    body = json.dumps(issue().to_json()).encode()
                except Exception:  # the issuer cannot read the state: serve nothing, watchers age out
                    self.send_error(503)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://{host}:{self.port}{NOTICE_PATH}"
        self._thread: threading.Thread | None = None

    def start(self) -> NoticeServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="notice-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def wait_for_clear(watcher: HaltWatcher, timeout_s: float) -> bool:
    """Poll until clear or `timeout_s`; for callers that may wait rather than refuse at once."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        watcher.poll()
        if watcher.clear():
            return True
        time.sleep(0.05)
    return False
