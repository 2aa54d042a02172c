"""What a co-signer pins at provisioning: the coordinator's HSM attestation key, the operators'
keys, the policy it evaluates itself, the halt-notice key and where to poll it, the network.

Written once into HOME/cosigners/N/pins.json by whoever provisions the co-signer (the tests, the
demo, or an operator); the co-signer never takes these from the coordinator at run time. The file
is the project's shared signer pins format (`coffer.pins.SignerPins`, version 1), so the same
provisioning step serves cold signers and co-signers; an older co-signer-only form is still read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coffer.errors import ConfigError
from coffer.policy import CompiledPolicy, Operator, OperatorRegistry, Role, compile_policy, default_policy

__all__ = ["CosignerPins", "PINS_FILE", "write_pins", "read_pins"]

PINS_FILE = "pins.json"
_FIELDS = {"attestation_public_key", "notice_public_key", "notice_url", "notice_max_age_s", "operators",
           "policy", "network"}


@dataclass(frozen=True, slots=True)
class CosignerPins:
    attestation_public_key: bytes
    notice_public_key: bytes
    notice_url: str | None
    notice_max_age_s: int
    operators: tuple[Operator, ...]
    policy_text: str | None = None  # None: the shipped default policy
    schema_text: str | None = None
    network: str = "regtest"

    def registry(self) -> OperatorRegistry:
        return OperatorRegistry(self.operators)

    def policy(self) -> CompiledPolicy:
        if self.policy_text is None or self.schema_text is None:
            return default_policy()
        return compile_policy(self.policy_text, self.schema_text)

    def to_json(self) -> dict[str, Any]:
        return {
            "attestation_public_key": self.attestation_public_key.hex(),
            "notice_public_key": self.notice_public_key.hex(), "notice_url": self.notice_url,
            "notice_max_age_s": self.notice_max_age_s,
            "operators": [{"operator_id": o.operator_id, "roles": sorted(r.value for r in o.roles),
                           "ed25519_public_key": o.ed25519_public_key.hex()} for o in self.operators],
            "policy": None if self.policy_text is None else {"text": self.policy_text, "schema": self.schema_text},
            "network": self.network,
        }


def write_pins(directory: Path, pins: CosignerPins) -> Path:
    """Write the pins in the shared `coffer.pins.SignerPins` format."""
    from coffer.pins import SignerPins
    from coffer.policy.engine import default_policy_text, default_schema_text

    shared = SignerPins(pins.attestation_public_key, pins.operators, pins.policy_text or default_policy_text(),
                        pins.schema_text or default_schema_text(), pins.notice_public_key, pins.notice_url or "",
                        pins.notice_max_age_s)
    return shared.save(directory)


def read_pins(directory: Path) -> CosignerPins:
    path = directory / PINS_FILE
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "version" in data:
            return _from_shared(directory)
        if not isinstance(data, dict) or set(data) != _FIELDS:
            raise ConfigError(f"fields must be exactly {sorted(_FIELDS)}", path=str(path))
        operators = tuple(Operator(o["operator_id"], frozenset(Role(r) for r in o["roles"]),
                                   bytes.fromhex(o["ed25519_public_key"])) for o in data["operators"])
        policy = data["policy"]
        return CosignerPins(
            bytes.fromhex(data["attestation_public_key"]), bytes.fromhex(data["notice_public_key"]),
            data["notice_url"], int(data["notice_max_age_s"]), operators,
            None if policy is None else str(policy["text"]), None if policy is None else str(policy["schema"]),
            str(data["network"]))
    except FileNotFoundError:
        raise ConfigError("pins file missing: provision the co-signer first", path=str(path)) from None
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"pins file is malformed ({type(error).__name__})", path=str(path)) from None


def _from_shared(directory: Path) -> CosignerPins:
    from coffer.pins import PinsInvalid, SignerPins

    try:
        shared = SignerPins.load(directory)
    except PinsInvalid as error:
        raise ConfigError(str(error), path=str(directory / PINS_FILE)) from None
    return CosignerPins(shared.attestation_public_key, shared.halt_public_key, shared.halt_url or None,
                        shared.halt_max_age_s, shared.operators, shared.policy_text, shared.schema_text)
