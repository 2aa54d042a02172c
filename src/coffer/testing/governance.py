"""A governance quorum for tests and the demo: administrator and officer keys held in memory (or
loaded from the administrators' own directories), which sign actions and resumes the way the
real administrators and officers would. Never used by production paths."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nacl.signing

from coffer.keyholder.administrators import AdminKey, propose
from coffer.keyholder.governance import ActionKind, GovernancePins, Officer, SignedAction
from coffer.keyholder.governance_store import GovernanceStore
from coffer.recon.halt import OfficerSignature, resume_message

__all__ = ["Quorum", "DOMAIN_DEFAULT"]

DOMAIN_DEFAULT = "coffer-test"


@dataclass
class Quorum:
    admins: list[AdminKey]
    threshold: int = 2
    officers: dict[str, nacl.signing.SigningKey] = field(default_factory=dict)
    officer_quorum: int = 2
    domain: str = DOMAIN_DEFAULT

    @classmethod
    def generate(cls, *, admins: int = 3, threshold: int = 2, officers: int = 3, officer_quorum: int = 2,
                 domain: str = DOMAIN_DEFAULT) -> Quorum:
        keys = [AdminKey(f"admin-{i}", nacl.signing.SigningKey.generate()) for i in range(1, admins + 1)]
        return cls(keys, threshold, {f"officer-{i}": nacl.signing.SigningKey.generate()
                                     for i in range(1, officers + 1)}, officer_quorum, domain)

    def impostors(self) -> Quorum:
        """Administrators and officers an attacker made up, in this deployment's domain."""
        made_up = Quorum.generate(domain=self.domain)
        made_up.admins = [AdminKey(f"mallory-{index}", admin.key) for index, admin in enumerate(made_up.admins)]
        return made_up

    def pins(self) -> GovernancePins:
        return GovernancePins(self.domain, tuple(a.public for a in self.admins), self.threshold,
                              tuple(Officer(i, bytes(k.verify_key)) for i, k in self.officers.items()),
                              self.officer_quorum)

    def provision(self, directory: Path) -> None:
        GovernanceStore.provision(directory, self.pins())

    def action(self, kind: ActionKind, *, key_id: str | None, keyholders: Sequence[str],
               content: Mapping[str, Any], signers: Sequence[AdminKey] | None = None,
               now_s: int | None = None) -> SignedAction:
        """An action signed by `signers` (default: the first k administrators)."""
        signed = propose(self.domain, kind, key_id=key_id, keyholders=keyholders, content=content,
                         now_s=int(time.time()) if now_s is None else now_s)
        for admin in (self.admins[: self.threshold] if signers is None else signers):
            signed = admin.sign(signed)
        return signed

    def resume(self, halt_id: str, reason: str, officer_ids: Sequence[str] | None = None
               ) -> list[OfficerSignature]:
        """Officer signatures resuming `halt_id` (default: the first `officer_quorum` officers)."""
        chosen = list(self.officers)[: self.officer_quorum] if officer_ids is None else list(officer_ids)
        message = resume_message(halt_id, reason)
        return [OfficerSignature(i, self.officers[i].sign(message).signature) for i in chosen]

    def approve(self, kind: ActionKind, key_id: str, keyholders: Sequence[str],
                content: Mapping[str, Any]) -> SignedAction:
        """A `coffer.keyholder.lifecycle.Approver`: the administrators review and sign at once."""
        return self.action(kind, key_id=key_id, keyholders=keyholders, content=content)
