"""Re-sharing (revocation): move the same key to a new set of holders, possibly a new threshold.

A quorum Q of old holders (at least the old threshold) deals: member i shares lambda_i * s_i,
where lambda_i is its Lagrange coefficient at zero over Q. Every recipient checks each dealer's
constant commitment against lambda_i * (the dealer's old public share) and that those constants
sum to the group key; its new share is the sum of its sub-shares. The new identifier set may
leave out a revoked holder, whose old share then no longer combines with anyone's new share.

Use as for refresh (`coffer.mpc.dkg.refresh`): fresh `session_id`, `reshare_deal` by each
dealer, `reshare_receive` by each new holder, acknowledgments of `transcript_digest`, then the
old shares are deleted. Deletion cannot be proved: after a compromise also move the funds to a
fresh key. Pure functions, no I/O.
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
from coffer.mpc.dkg.errors import HostSeckeyError, InvalidArgument, ProtocolError
from coffer.mpc.dkg.suite import DkgSuite
from coffer.mpc.dkg.types import KeyShareOutput, SecretShare
from coffer.mpc.dkg.vss import commitment_eval, lagrange_coefficient
from coffer.mpc.dkg.wire import Reader, u32
from coffer.mpc.errors import InsufficientSigners, InvalidParameters, MalformedInput

__all__ = ["ReshareSession", "reshare_deal", "reshare_receive", "reshare_observe", "transcript_digest",
           "serialize_session", "parse_session"]

KIND = "reshare"


@dataclass(frozen=True, slots=True)
class ReshareSession:
    """The public facts of one re-share.

    `old_public_shares` are the current holders' public shares (identifier -> encoding);
    `dealers` the quorum that deals (identifiers among them, with host keys); `new_holders` the
    recipients under their new identifiers; `new_threshold` the threshold of the new sharing.
    """

    session_id: bytes
    group_public_key: bytes
    old_threshold: int
    old_public_shares: dict[int, bytes]
    dealers: tuple[Holder, ...]
    new_threshold: int
    new_holders: tuple[Holder, ...]


def _check(suite: DkgSuite, session: ReshareSession) -> None:
    if len(session.session_id) != 32:
        raise InvalidArgument("session_id must be 32 bytes")
    validate_holders(suite, session.dealers)
    validate_holders(suite, session.new_holders)
    dealer_ids = {holder.identifier for holder in session.dealers}
    if not dealer_ids <= set(session.old_public_shares):
        raise InvalidParameters("every dealer must be a current holder")
    if not 1 <= session.old_threshold <= len(session.old_public_shares):
        raise InvalidParameters("old threshold out of range")
    if len(dealer_ids) < session.old_threshold:
        raise InsufficientSigners("fewer dealers than the old threshold")
    if not 1 <= session.new_threshold <= len(session.new_holders):
        raise InvalidParameters("new threshold must be between 1 and the number of new holders")


def _plan(suite: DkgSuite, session: ReshareSession) -> DealingPlan:
    _check(suite, session)
    dealers = tuple(sorted(session.dealers, key=lambda holder: holder.identifier))
    recipients = tuple(sorted(session.new_holders, key=lambda holder: holder.identifier))
    quorum = [holder.identifier for holder in dealers]
    try:
        group_key = suite.decode_point(session.group_public_key)
        old = {identifier: suite.decode(encoding) for identifier, encoding in session.old_public_shares.items()}
    except MalformedInput as error:
        raise InvalidArgument(f"session carries an invalid key: {error}") from None
    expected = {identifier: suite.mul(old[identifier], lagrange_coefficient(quorum, identifier, suite.order))
                for identifier in quorum}
    if suite.sum(list(expected.values())) != group_key:
        raise ProtocolError("old public shares of the quorum do not interpolate to the group key")
    body = (session.session_id + session.group_public_key + session.old_threshold.to_bytes(4, "big")
            + session.new_threshold.to_bytes(4, "big")
            + b"".join(identifier.to_bytes(4, "big") + session.old_public_shares[identifier]
                       for identifier in sorted(session.old_public_shares))
            + b"D" + b"".join(holder.identifier.to_bytes(4, "big") + holder.hostpubkey for holder in dealers)
            + b"R" + b"".join(holder.identifier.to_bytes(4, "big") + holder.hostpubkey for holder in recipients))
    digest = suite.tagged_hash(KIND + " session", body)
    return DealingPlan(KIND, digest, session.new_threshold, dealers, recipients, expected)


def reshare_deal(suite: DkgSuite, session: ReshareSession, hostseckey: bytes, old_share: SecretShare,
                 random: bytes) -> bytes:
    """A quorum member's dealing of lambda_i * s_i to the new holders (`random`: 32 fresh bytes)."""
    plan = _plan(suite, session)
    hostpubkey = suite.pubkey_gen(bytes(hostseckey))
    dealer = plan.dealer(old_share.identifier)
    if dealer.hostpubkey != hostpubkey:
        raise HostSeckeyError("host secret key does not match the dealer's host public key")
    if suite.encode(suite.base_mul(old_share.value)) != session.old_public_shares[old_share.identifier]:
        raise InvalidArgument("old share does not match its public share")
    quorum = [holder.identifier for holder in plan.dealers]
    constant = old_share.value * lagrange_coefficient(quorum, old_share.identifier, suite.order)
    return deal(suite, plan, hostseckey, old_share.identifier, constant, random)


def _new_public_shares(suite: DkgSuite, plan: DealingPlan, opened: Sequence[Dealing]) -> dict[int, bytes]:
    return {holder.identifier: suite.encode(suite.sum(
        [commitment_eval(suite, dealing.commitment, holder.identifier) for dealing in opened]))
        for holder in plan.recipients}


def reshare_observe(suite: DkgSuite, session: ReshareSession, dealings: Mapping[int, bytes]) -> KeyShareOutput:
    """The coordinator's view: checks every dealing publicly, returns the new public shares."""
    plan = _plan(suite, session)
    return KeyShareOutput(suite.name, session.new_threshold, session.group_public_key,
                          _new_public_shares(suite, plan, collect_dealings(suite, plan, dealings)), None)


def reshare_receive(suite: DkgSuite, session: ReshareSession, hostseckey: bytes,
                    dealings: Mapping[int, bytes]) -> KeyShareOutput:
    """Check every dealing, decrypt this new holder's sub-shares, return its new output.

    Raises InvalidDealing naming the dealer of any bad dealing.
    """
    plan = _plan(suite, session)
    hostpubkey = suite.pubkey_gen(bytes(hostseckey))
    matches = [holder.identifier for holder in plan.recipients if holder.hostpubkey == hostpubkey]
    if not matches:
        raise HostSeckeyError("host secret key does not match any new holder")
    identifier = matches[0]
    opened = collect_dealings(suite, plan, dealings)
    public_shares = _new_public_shares(suite, plan, opened)
    value = sum(receive_sub_share(suite, plan, dealing, hostseckey, identifier) for dealing in opened) % suite.order
    return KeyShareOutput(suite.name, session.new_threshold, session.group_public_key, public_shares,
                          SecretShare(identifier, value))


def transcript_digest(suite: DkgSuite, session: ReshareSession, dealings: Mapping[int, bytes]) -> bytes:
    """The digest every new holder acknowledges (`dealing.ack_sign`) once it accepted its share."""
    return _transcript_digest(suite, _plan(suite, session), dealings)


def _holders_bytes(holders: tuple[Holder, ...]) -> bytes:
    ordered = sorted(holders, key=lambda holder: holder.identifier)
    return u32(len(ordered)) + b"".join(u32(holder.identifier) + holder.hostpubkey for holder in ordered)


def serialize_session(suite: DkgSuite, session: ReshareSession) -> bytes:
    """session_id (32) | group key | old t (4) | old n (4) | old n x (identifier (4) | public share)
    | dealers: count (4) + (identifier (4) | host key)* | new t (4) | new holders: count + (id | key)*.
    Identifiers ascending in every list."""
    return (session.session_id + session.group_public_key + u32(session.old_threshold)
            + u32(len(session.old_public_shares))
            + b"".join(u32(identifier) + session.old_public_shares[identifier]
                       for identifier in sorted(session.old_public_shares))
            + _holders_bytes(session.dealers) + u32(session.new_threshold) + _holders_bytes(session.new_holders))


def _read_holders(reader: Reader, size: int) -> tuple[Holder, ...]:
    holders, previous = [], 0
    for _ in range(reader.count()):
        previous = reader.identifiers_ascending(previous, reader.u32())
        holders.append(Holder(previous, reader.take(size)))
    return tuple(holders)


def parse_session(suite: DkgSuite, data: bytes) -> ReshareSession:
    """Strict inverse of `serialize_session`; then the session's rules are checked too."""
    size = suite.element_length
    reader = Reader(data)
    session_id = reader.take(32)
    group_public_key = reader.take(size)
    old_threshold = reader.u32()
    old_public_shares, previous = {}, 0
    for _ in range(reader.count()):
        previous = reader.identifiers_ascending(previous, reader.u32())
        old_public_shares[previous] = reader.take(size)
    dealers = _read_holders(reader, size)
    new_threshold = reader.u32()
    new_holders = _read_holders(reader, size)
    reader.finish()
    session = ReshareSession(session_id, group_public_key, old_threshold, old_public_shares, dealers,
                             new_threshold, new_holders)
    _plan(suite, session)
    return session
