"""What a co-signer checks before it takes part in a DKG, a refresh or a re-share: a governance
action signed by its pinned administrators that says exactly this (members and their host keys,
threshold, dealers, new holders, revocations), for this key and this key holder.

The FROST and the DKLs23 engines both call these; the rules are written once. Host keys are
pinned by the DKG action (each key holder keeps the members' host keys per key) and replaced
only by a verified re-share action.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from coffer.keyholder.governance import ActionKind, GovernanceAction, GovernanceRefused, SignedAction
from coffer.keyholder.governance_store import GovernanceStore, PinnedKey

__all__ = ["KeyholderGovernance", "ReshareTerms", "THRESHOLD_MIN", "holders_json", "Approver", "keyholder_name",
           "dkg_content", "refresh_content", "reshare_content"]

THRESHOLD_MIN: Final = 2
MEMBERSHIP_KINDS: Final = frozenset({ActionKind.OFFICER_ENROL, ActionKind.OFFICER_REVOKE,
                                     ActionKind.ADMINISTRATOR_ENROL, ActionKind.ADMINISTRATOR_REVOKE})

Holders = Sequence[tuple[int, bytes]]  # (identifier, host public key), in the order the session uses


def holders_json(holders: Holders) -> list[dict[str, Any]]:
    return [{"identifier": identifier, "hostpubkey": key.hex()} for identifier, key in holders]


def _refuse(message: str, rule: str) -> GovernanceRefused:
    return GovernanceRefused(message, rule=rule)


def _threshold_at_least_two(threshold: int) -> None:
    """Even a signed action cannot make one holder enough."""
    if threshold < THRESHOLD_MIN:
        raise _refuse(f"threshold {threshold} is below {THRESHOLD_MIN}", "governance.threshold")


@dataclass(frozen=True, slots=True)
class ReshareTerms:
    """What a verified re-share action allows: kept by the co-signer until it confirms."""

    new_threshold: int
    new_holders: dict[int, bytes]
    revoke: tuple[int, ...]


class KeyholderGovernance:
    """One key holder's gate in front of its lifecycle handlers (thread-safe through the store)."""

    def __init__(self, store: GovernanceStore, keyholder: str,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.store = store
        self.keyholder = keyholder
        self._clock = clock

    def _accept(self, raw: object, kind: ActionKind, key_id: str,
                check: Callable[[GovernanceAction], None]) -> GovernanceAction:
        if raw is None:
            raise _refuse(f"a {kind.value} needs a governance action signed by the administrators",
                          "governance.missing")
        signed = SignedAction.from_json(raw)
        return self.store.accept(signed, kind, keyholder=self.keyholder, key_id=key_id,
                                 now_s=int(self._clock().timestamp()), check=check)

    def authorize_dkg(self, raw: object, *, key_id: str, suite: str, threshold: int,
                      hostpubkeys: Sequence[bytes], own_hostpubkey: bytes) -> GovernanceAction:
        """A DKG runs only with exactly the members, host keys and threshold the action names."""

        def check(action: GovernanceAction) -> None:
            _threshold_at_least_two(threshold)
            content = action.content
            members = content.get("members")
            if not isinstance(members, list) or not all(isinstance(m, dict) for m in members):
                raise _refuse("members must be a list of objects", "governance.content")
            named = [str(m.get("hostpubkey")) for m in members]
            if content.get("suite") != suite or content.get("threshold") != threshold:
                raise _refuse("suite or threshold differ from the action", "governance.threshold")
            if named != [h.hex() for h in hostpubkeys]:
                raise _refuse("the session's host keys are not the ones the administrators pinned",
                              "governance.host_keys")
            mine = [m for m in members if m.get("keyholder") == self.keyholder]
            if len(mine) != 1 or mine[0].get("hostpubkey") != own_hostpubkey.hex():
                raise _refuse("this key holder's host key is not the one pinned for it", "governance.host_keys")
            if sorted(str(m.get("keyholder")) for m in members) != list(action.scope.keyholders):
                raise _refuse("the members are not the action's key holders", "governance.scope")

        return self._accept(raw, ActionKind.DKG, key_id, check)

    def pinned(self, key_id: str) -> PinnedKey:
        found = self.store.pinned_key(key_id)
        if found is None:
            raise _refuse(f"no host keys pinned for key {key_id!r}", "governance.unpinned_key")
        return found

    def authorize_refresh(self, raw: object, *, key_id: str, holders: Holders) -> GovernanceAction:
        """A refresh deals to exactly the key's pinned holders."""
        _threshold, pinned = self.pinned(key_id)
        if dict(holders) != pinned or len(holders) != len(pinned):
            raise _refuse("the refresh's holders are not the key's pinned holders", "governance.host_keys")

        def check(action: GovernanceAction) -> None:
            if action.content.get("holders") != holders_json(holders):
                raise _refuse("the refresh's holders differ from the action", "governance.content")

        return self._accept(raw, ActionKind.REFRESH, key_id, check)

    def authorize_reshare(self, raw: object, *, key_id: str, dealers: Holders, new_holders: Holders,
                          new_threshold: int) -> ReshareTerms:
        """A re-share: dealers among the pinned holders, new holders and threshold as the action says,
        a majority threshold unless the action allows a minority explicitly."""
        _threshold, pinned = self.pinned(key_id)
        for identifier, key in dealers:
            if pinned.get(identifier) != key:
                raise _refuse(f"dealer {identifier} is not a pinned holder of the key", "governance.host_keys")
        terms: list[ReshareTerms] = []

        def check(action: GovernanceAction) -> None:
            _threshold_at_least_two(new_threshold)
            content = action.content
            if content.get("dealers") != holders_json(dealers) or \
                    content.get("new_holders") != holders_json(new_holders):
                raise _refuse("dealers or new holders differ from the action", "governance.host_keys")
            if content.get("new_threshold") != new_threshold:
                raise _refuse("the new threshold differs from the action", "governance.threshold")
            if content.get("minority_threshold") is not True and 2 * new_threshold <= len(new_holders):
                raise _refuse(f"threshold {new_threshold} of {len(new_holders)} is not a majority",
                              "governance.threshold")
            revoke = content.get("revoke")
            if not isinstance(revoke, list) or not all(isinstance(i, int) and 1 <= i <= 255 for i in revoke):
                raise _refuse("revoke must list holder identifiers", "governance.content")
            if {i for i, _ in new_holders} & set(revoke):
                raise _refuse("a revoked holder cannot be a new holder", "governance.content")
            terms.append(ReshareTerms(new_threshold, dict(new_holders), tuple(sorted(revoke))))

        self._accept(raw, ActionKind.RESHARE, key_id, check)
        return terms[0]

    def confirm_reshare(self, key_id: str, terms: ReshareTerms, revoked: Sequence[int]) -> None:
        """At confirmation: the revocations are the action's, and the new holders become the pins."""
        if tuple(sorted(revoked)) != terms.revoke:
            raise _refuse("the revocations differ from the re-share action", "governance.content")
        self.store.pin_key(key_id, terms.new_threshold, terms.new_holders)

    def pin_dkg(self, key_id: str, threshold: int, hostpubkeys: Sequence[bytes]) -> None:
        self.store.pin_key(key_id, threshold, {index + 1: key for index, key in enumerate(hostpubkeys)})

    def apply_membership(self, raw: object) -> GovernanceAction:
        """An officer or administrator enrolment or revocation, verified and applied here."""
        signed = SignedAction.from_json(raw)
        if signed.action.kind not in MEMBERSHIP_KINDS:
            raise _refuse(f"{signed.action.kind.value} is not applied on its own", "governance.kind")
        return self.store.accept(signed, signed.action.kind, keyholder=self.keyholder, key_id=None,
                                 now_s=int(self._clock().timestamp()))

    def officers(self) -> tuple[Mapping[str, bytes], int]:
        pins = self.store.pins()
        return pins.officer_keys(), pins.officer_quorum


# -- the proposer's side: the exact content administrators sign --------------------------------------
Approver = Callable[[ActionKind, str, Sequence[str], Mapping[str, Any]], SignedAction]
"""(kind, key id, key holders, content) -> the action signed by the administrators. The coordinator
has no key: in production this hands the proposal to the administrators and waits for the file
they signed; in tests and the demo it is the administrators' own step."""


def keyholder_name(cosigner_id: int) -> str:
    return f"cosigner-{cosigner_id}"


def dkg_content(suite: str, threshold: int, members: Sequence[tuple[int, bytes]]) -> dict[str, Any]:
    """members: (co-signer id, host public key) in identifier order."""
    return {"suite": suite, "threshold": threshold,
            "members": [{"keyholder": keyholder_name(c), "hostpubkey": key.hex()} for c, key in members]}


def refresh_content(holders: Holders) -> dict[str, Any]:
    return {"holders": holders_json(holders)}


def reshare_content(dealers: Holders, new_holders: Holders, new_threshold: int, revoke: Sequence[int], *,
                    minority_threshold: bool = False) -> dict[str, Any]:
    return {"dealers": holders_json(dealers), "new_holders": holders_json(new_holders),
            "new_threshold": new_threshold, "revoke": sorted(revoke), "minority_threshold": minority_threshold}
