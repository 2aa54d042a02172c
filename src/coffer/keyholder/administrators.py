"""An administrator's own key file and the steps an administrator takes with it: make the key,
propose an action, review and sign one. Each administrator keeps a directory of their own (never
inside the coordinator's home); the coordinator only carries the signed action files.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import nacl.signing

from coffer.keyholder.governance import (
    ActionKind,
    Administrator,
    GovernanceAction,
    GovernanceRefused,
    SignedAction,
    fingerprint,
    new_action,
    sign,
)

__all__ = ["AdminKey", "make_admin", "load_admin", "propose", "sign_file", "read_action", "write_action",
           "describe", "ACTION_LIFETIME_S_DEFAULT", "ADMIN_KEY_FILE", "FileApprover", "ProposalWritten"]

ADMIN_KEY_FILE: Final = "admin.key"
ADMIN_ID_FILE: Final = "admin.json"
ACTION_LIFETIME_S_DEFAULT: Final = 24 * 3600


@dataclass(frozen=True, slots=True)
class AdminKey:
    admin_id: str
    key: nacl.signing.SigningKey

    def __repr__(self) -> str:
        return f"AdminKey(admin_id={self.admin_id!r})"

    @property
    def public(self) -> Administrator:
        return Administrator(self.admin_id, bytes(self.key.verify_key))

    def sign(self, signed: SignedAction) -> SignedAction:
        return sign(signed, self.admin_id, self.key)


def make_admin(directory: Path, admin_id: str, key: nacl.signing.SigningKey | None = None) -> AdminKey:
    """Create an administrator's key (or store `key`) in their own directory (0700, key file 0600)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    path = directory / ADMIN_KEY_FILE
    if path.exists():
        raise GovernanceRefused(f"{path} exists already", rule="governance.admin_exists")
    key = key or nacl.signing.SigningKey.generate()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(bytes(key).hex())
    (directory / ADMIN_ID_FILE).write_text(json.dumps(
        {"admin_id": admin_id, "public_key": bytes(key.verify_key).hex()}, sort_keys=True))
    return AdminKey(admin_id, key)


def load_admin(directory: Path) -> AdminKey:
    try:
        info = json.loads((directory / ADMIN_ID_FILE).read_text())
        key = nacl.signing.SigningKey(bytes.fromhex((directory / ADMIN_KEY_FILE).read_text().strip()))
    except (OSError, ValueError, TypeError) as error:
        raise GovernanceRefused(f"no administrator key in {directory} ({type(error).__name__})",
                                rule="governance.admin_key") from None
    if bytes(key.verify_key).hex() != info.get("public_key"):
        raise GovernanceRefused("administrator key file and public key differ", rule="governance.admin_key")
    return AdminKey(str(info["admin_id"]), key)


def propose(domain: str, kind: ActionKind, *, key_id: str | None, keyholders: Sequence[str],
            content: Mapping[str, Any], now_s: int | None = None,
            lifetime_s: int = ACTION_LIFETIME_S_DEFAULT) -> SignedAction:
    """An unsigned action with a fresh nonce (anyone may propose; only a quorum makes it valid)."""
    now = int(time.time()) if now_s is None else now_s
    action = new_action(domain, kind, key_id=key_id, keyholders=keyholders, content=content,
                        nonce=secrets.token_bytes(16), not_after_s=now + lifetime_s)
    return SignedAction(action, ())


def read_action(path: Path) -> SignedAction:
    return SignedAction.decode(path.read_bytes())


def write_action(path: Path, signed: SignedAction) -> Path:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(signed.encode())
    temporary.replace(path)
    return path


def sign_file(path: Path, admin: AdminKey) -> SignedAction:
    """An administrator signs the action in `path` (after reviewing `describe`)."""
    signed = admin.sign(read_action(path))
    write_action(path, signed)
    return signed


def describe(signed: SignedAction) -> str:
    """What an administrator reads before signing: every field, host keys with fingerprints."""
    action: GovernanceAction = signed.action
    lines = [f"kind:        {action.kind.value}", f"domain:      {action.domain}",
             f"key:         {action.scope.key_id}", f"key holders: {', '.join(action.scope.keyholders)}",
             f"valid until: {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime(action.not_after_s))}",
             f"digest:      {action.digest().hex()}"]
    for name, value in sorted(action.content.items()):
        lines.append(f"{name}: {json.dumps(value, sort_keys=True)}")
    for item in _host_keys(action.content):
        lines.append(f"host key {item[0]}: {fingerprint(bytes.fromhex(item[1]))}")
    lines.append("signed by:   " + (", ".join(s.admin_id for s in signed.signatures) or "nobody yet"))
    return "\n".join(lines)


def _host_keys(content: Mapping[str, Any]) -> list[tuple[str, str]]:
    found = []
    for name in ("members", "holders", "new_holders"):
        for item in content.get(name, []) if isinstance(content.get(name), list) else []:
            if isinstance(item, dict) and isinstance(item.get("hostpubkey"), str):
                label = str(item.get("keyholder", item.get("identifier", "?")))
                found.append((label, item["hostpubkey"]))
    return found


class ProposalWritten(GovernanceRefused):
    """The proposal was written for the administrators to sign; run the command again after."""


class FileApprover:
    """A `coffer.keyholder.lifecycle.Approver` for the coordinator's CLI: the first run writes the
    proposal to `path` and stops; the administrators review and sign that file with their own
    keys (`coffer gov show/sign`); the next run carries the signed file to the key holders, which
    check it says exactly what is asked of them."""

    def __init__(self, path: Path, domain: str) -> None:
        self.path = path
        self.domain = domain

    def __call__(self, kind: ActionKind, key_id: str, keyholders: Sequence[str],
                 content: Mapping[str, Any]) -> SignedAction:
        if self.path.exists():
            signed = read_action(self.path)
            if signed.signatures:
                return signed
        write_action(self.path, propose(self.domain, kind, key_id=key_id, keyholders=keyholders, content=content))
        raise ProposalWritten(f"proposal written to {self.path}: the administrators sign it with "
                              f"`coffer gov sign {self.path} --admin-dir DIR`, then run this again",
                              rule="governance.proposed")
