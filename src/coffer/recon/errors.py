"""Errors of reconciliation and the halt switch."""

from __future__ import annotations

from collections.abc import Sequence

from coffer.errors import CofferError

__all__ = [
    "ReconError", "InvalidCheckInput", "HaltInForce", "HaltStateUnknown", "InvalidNotice",
    "ResumeRefused", "InsufficientSignatures", "InvalidOfficerSignature", "UnknownOfficer",
    "NotHalted", "WrongHalt", "OfficerExists",
]


class ReconError(CofferError):
    """Root of reconciliation's errors."""


class InvalidCheckInput(ReconError):
    """The inputs of a check are inconsistent (shapes, indices, duplicates, out-of-range values)."""


class HaltInForce(ReconError):
    """The halt is in force: no matching, no withdrawal, no signature."""

    def __init__(self, halt_id: str | None, message: str = "the halt is in force") -> None:
        super().__init__(f"{message} (halt {halt_id})" if halt_id else message)
        self.halt_id = halt_id


class HaltStateUnknown(ReconError):
    """The current halt state could not be learnt within the bound: refuse (fail closed)."""


class InvalidNotice(ReconError):
    """A halt notice is malformed, signed by the wrong key, stale, from the future, or replayed."""


class ResumeRefused(ReconError):
    """A resume request was refused."""


class InsufficientSignatures(ResumeRefused):
    """Fewer distinct valid officer signatures than the quorum asks."""

    def __init__(self, *, valid: int, required: int) -> None:
        super().__init__(f"{valid} valid officer signatures, {required} required")
        self.valid = valid
        self.required = required


class InvalidOfficerSignature(ResumeRefused):
    """One or more officer signatures do not verify; `culprits` names the officers."""

    def __init__(self, culprits: Sequence[str]) -> None:
        super().__init__(f"invalid signature from officers {sorted(culprits)}")
        self.culprits = tuple(sorted(culprits))


class UnknownOfficer(ResumeRefused):
    """A signature names an officer who is not registered."""

    def __init__(self, culprits: Sequence[str]) -> None:
        super().__init__(f"unknown officers {sorted(culprits)}")
        self.culprits = tuple(sorted(culprits))


class NotHalted(ResumeRefused):
    """Resume was asked while no halt is in force."""


class WrongHalt(ResumeRefused):
    """The signatures are over a halt id that is not the halt in force."""


class OfficerExists(ReconError):
    """An officer id or public key is registered already."""
