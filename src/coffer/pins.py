"""What a signer or co-signer pins at set-up, and trusts from then on instead of the coordinator:
the coordinator's HSM attestation key, the operators and their public keys, the active policy
set (text and schema, so it can evaluate the policy itself), and the halt-notice key and URL.

In production the security officers hand these over out of band; on one machine `coffer cold
setup` / `coffer mpc dkg` write the file into each signer's own directory. A signer refuses to
sign without valid pins.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coffer.errors import CofferError
from coffer.policy import SignerGuard
from coffer.policy.engine import CompiledPolicy, Route, compile_policy
from coffer.policy.guard import SignedHistory, SignerFacts
from coffer.policy.roles import Operator, OperatorRegistry, Role

__all__ = ["SignerPins", "PinsInvalid", "PINS_FILE", "PINS_BYTES_MAX"]

PINS_FILE = "pins.json"
PINS_BYTES_MAX = 1 << 20


class PinsInvalid(CofferError):
    """The pins file is missing or malformed: the signer refuses to sign."""


@dataclass(frozen=True, slots=True)
class SignerPins:
    attestation_public_key: bytes
    operators: tuple[Operator, ...]
    policy_text: str
    schema_text: str
    halt_public_key: bytes
    halt_url: str
    halt_max_age_s: int

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "attestation_public_key": self.attestation_public_key.hex(),
            "operators": [{"id": o.operator_id, "roles": sorted(r.value for r in o.roles),
                           "ed25519": o.ed25519_public_key.hex(),
                           "other_keys": [[name, key.hex()] for name, key in o.other_keys]} for o in self.operators],
            "policy": {"text": self.policy_text, "schema": self.schema_text},
            "halt": {"public_key": self.halt_public_key.hex(), "url": self.halt_url,
                     "max_age_s": self.halt_max_age_s},
        }

    @classmethod
    def from_json(cls, data: Any) -> SignerPins:
        try:
            if data["version"] != 1:
                raise PinsInvalid("unknown pins version")
            operators = tuple(
                Operator(o["id"], frozenset(Role(r) for r in o["roles"]), bytes.fromhex(o["ed25519"]),
                         tuple((str(n), bytes.fromhex(k)) for n, k in o.get("other_keys", [])))
                for o in data["operators"])
            return cls(bytes.fromhex(data["attestation_public_key"]), operators, str(data["policy"]["text"]),
                       str(data["policy"]["schema"]), bytes.fromhex(data["halt"]["public_key"]),
                       str(data["halt"]["url"]), int(data["halt"]["max_age_s"]))
        except PinsInvalid:
            raise
        except (KeyError, TypeError, ValueError, CofferError) as exc:
            raise PinsInvalid(f"malformed pins: {type(exc).__name__}: {exc}") from None

    def save(self, directory: Path) -> Path:
        path = directory / PINS_FILE
        directory.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True))
        temporary.replace(path)
        return path

    @classmethod
    def load(cls, directory: Path) -> SignerPins:
        path = directory / PINS_FILE
        if not path.exists():
            raise PinsInvalid(f"no pins in {directory}: run the set-up ceremony")
        if path.stat().st_size > PINS_BYTES_MAX:
            raise PinsInvalid("pins file too large")
        try:
            return cls.from_json(json.loads(path.read_text()))
        except ValueError as exc:
            raise PinsInvalid(f"pins file is not JSON: {exc}") from None

    def policy(self) -> CompiledPolicy:
        return compile_policy(self.policy_text, self.schema_text)

    def guard(self, *, signer_id: str, route: Route, history: SignedHistory, facts: SignerFacts,
              halted: Callable[[], bool], on_event: Callable[[str, dict[str, object]], None] | None = None
              ) -> SignerGuard:
        return SignerGuard(signer_id=signer_id, route=route, attestation_public_key=self.attestation_public_key,
                           operators=OperatorRegistry(self.operators), policy=self.policy(), history=history,
                           facts=facts, halted=halted, on_event=on_event)
