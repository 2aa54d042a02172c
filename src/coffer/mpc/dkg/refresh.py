"""Proactive refresh: new shares of the same key, so stolen old shares stop combining.

Every holder deals a sharing of zero (its constant commitment must be the identity, or the
dealing is refused and its dealer named); a holder's new share is its old share plus the sum of
the sub-shares it received, and every public share moves by the public image of those sums. The
group public key never changes.

Use: the coordinator fixes a `RefreshSession` (fresh 32-byte `session_id`, never reused); each
holder calls `refresh_deal`, the coordinator relays all dealings to all holders, each holder
calls `refresh_receive` and signs `transcript_digest` with `dealing.ack_sign`. A holder keeps
its old share until every acknowledgment verifies and a test signature with the new shares
succeeds; only then does it delete the old one (the co-signer service does this). Pure
functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from coffer.mpc.dkg.dealing import (
    Dealing,
    DealingPlan,
    Holder,
    collect_dealings,
    deal,
    receive_sub_share,
    validate_holders,
)
from coffer.mpc.dkg.dealing import transcript_digest as _transcript_digest
from coffer.mpc.dkg.errors import HostSeckeyError, InvalidArgument
from coffer.mpc.dkg.suite import DkgSuite
from coffer.mpc.dkg.types import KeyShareOutput, SecretShare
from coffer.mpc.dkg.verify import verify_output
from coffer.mpc.dkg.vss import commitment_eval
from coffer.mpc.dkg.wire import Reader, u32
from coffer.mpc.errors import InvalidParameters, MalformedInput

__all__ = ["RefreshSession", "refresh_deal", "refresh_receive", "refresh_observe", "transcript_digest",
           "serialize_session", "parse_session"]

KIND = "refresh"


@dataclass(frozen=True, slots=True)
class RefreshSession:
    """The public facts of one refresh: every current holder deals and receives."""

    session_id: bytes
    threshold: int
    group_public_key: bytes
    holders: tuple[Holder, ...]
    public_shares: dict[int, bytes]


def _plan(suite: DkgSuite, session: RefreshSession) -> DealingPlan:
    if len(session.session_id) != 32:
        raise InvalidArgument("session_id must be 32 bytes")
    validate_holders(suite, session.holders)
    holders = tuple(sorted(session.holders, key=lambda holder: holder.identifier))
    if {holder.identifier for holder in holders} != set(session.public_shares):
        raise InvalidParameters("holders and public shares name different identifiers")
    if not 1 <= session.threshold <= len(holders):
        raise InvalidParameters("threshold must be between 1 and the number of holders")
    try:
        suite.decode_point(session.group_public_key)
        for encoding in session.public_shares.values():
            suite.decode(encoding)
    except MalformedInput as error:
        raise InvalidArgument(f"session carries an invalid key: {error}") from None
    # Refreshing shares that are already inconsistent would hide the fault: refuse first.
    verify_output(suite, KeyShareOutput(suite.name, session.threshold, session.group_public_key,
                                        dict(session.public_shares), None))
    body = (session.session_id + session.threshold.to_bytes(4, "big") + session.group_public_key
            + b"".join(holder.identifier.to_bytes(4, "big") + holder.hostpubkey
                       + session.public_shares[holder.identifier] for holder in holders))
    digest = suite.tagged_hash(KIND + " session", body)
    zero = suite.identity()
    return DealingPlan(KIND, digest, session.threshold, holders, holders,
                       {holder.identifier: zero for holder in holders})


def _my_identifier(suite: DkgSuite, plan: DealingPlan, hostseckey: bytes) -> int:
    hostpubkey = suite.pubkey_gen(bytes(hostseckey))
    for holder in plan.recipients:
        if holder.hostpubkey == hostpubkey:
            return holder.identifier
    raise HostSeckeyError("host secret key does not match any holder of this session")


def refresh_deal(suite: DkgSuite, session: RefreshSession, hostseckey: bytes, random: bytes) -> bytes:
    """This holder's dealing of zero (`random`: 32 fresh bytes)."""
    plan = _plan(suite, session)
    return deal(suite, plan, hostseckey, _my_identifier(suite, plan, hostseckey), 0, random)


def _new_public_shares(suite: DkgSuite, session: RefreshSession, plan: DealingPlan,
                       opened: Sequence[Dealing]) -> dict[int, bytes]:
    public_shares = {}
    for holder in plan.recipients:
        images = [commitment_eval(suite, dealing.commitment, holder.identifier) for dealing in opened]
        old = suite.decode(session.public_shares[holder.identifier])
        public_shares[holder.identifier] = suite.encode(suite.sum([old, *images]))
    return public_shares


def refresh_observe(suite: DkgSuite, session: RefreshSession, dealings: Mapping[int, bytes]) -> KeyShareOutput:
    """The coordinator's view: checks every dealing publicly, returns the new public shares."""
    plan = _plan(suite, session)
    return KeyShareOutput(suite.name, session.threshold, session.group_public_key,
                          _new_public_shares(suite, session, plan, collect_dealings(suite, plan, dealings)), None)


def refresh_receive(suite: DkgSuite, session: RefreshSession, hostseckey: bytes, old_share: SecretShare,
                    dealings: Mapping[int, bytes]) -> KeyShareOutput:
    """Check every dealing, decrypt this holder's sub-shares, return its refreshed output.

    Raises InvalidDealing naming the dealer of any bad dealing. The caller must keep
    `old_share` until the refresh is confirmed (acknowledgments and a test signature).
    """
    plan = _plan(suite, session)
    identifier = _my_identifier(suite, plan, hostseckey)
    if old_share.identifier != identifier:
        raise InvalidArgument("old share belongs to another identifier")
    if suite.encode(suite.base_mul(old_share.value)) != session.public_shares[identifier]:
        raise InvalidArgument("old share does not match its public share")
    opened = collect_dealings(suite, plan, dealings)
    public_shares = _new_public_shares(suite, session, plan, opened)
    received = [receive_sub_share(suite, plan, dealing, hostseckey, identifier) for dealing in opened]
    value = (old_share.value + sum(received)) % suite.order
    return KeyShareOutput(suite.name, session.threshold, session.group_public_key, public_shares,
                          SecretShare(identifier, value))


def transcript_digest(suite: DkgSuite, session: RefreshSession, dealings: Mapping[int, bytes]) -> bytes:
    """The digest every holder acknowledges (`dealing.ack_sign`) once it accepted the refresh."""
    return _transcript_digest(suite, _plan(suite, session), dealings)


def serialize_session(suite: DkgSuite, session: RefreshSession) -> bytes:
    """session_id (32) | t (4) | n (4) | group key | n x (identifier (4) | host key | public share),
    ascending identifiers."""
    holders = sorted(session.holders, key=lambda holder: holder.identifier)
    if {holder.identifier for holder in holders} != set(session.public_shares):
        raise InvalidParameters("holders and public shares name different identifiers")
    return (session.session_id + u32(session.threshold) + u32(len(holders)) + session.group_public_key
            + b"".join(u32(holder.identifier) + holder.hostpubkey + session.public_shares[holder.identifier]
                       for holder in holders))


def parse_session(suite: DkgSuite, data: bytes) -> RefreshSession:
    """Strict inverse of `serialize_session`; then the session's rules are checked too."""
    size = suite.element_length
    reader = Reader(data)
    session_id = reader.take(32)
    threshold, count = reader.u32(), reader.count()
    group_public_key = reader.take(size)
    holders, public_shares, previous = [], {}, 0
    for _ in range(count):
        identifier = previous = reader.identifiers_ascending(previous, reader.u32())
        holders.append(Holder(identifier, reader.take(size)))
        public_shares[identifier] = reader.take(size)
    reader.finish()
    session = RefreshSession(session_id, threshold, group_public_key, tuple(holders), public_shares)
    _plan(suite, session)
    return session
