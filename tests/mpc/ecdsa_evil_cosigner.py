"""A misbehaving ECDSA co-signer for the process tests (never shipped): an honest `EcdsaCosigner`
that corrupts one chosen thing before sealing it, run with the same arguments as
`coffer cosigner` (python -m tests.mpc.ecdsa_evil_cosigner --id N --home H --port P --engine ecdsa)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from coffer.mpc.ecdsa_service.cosigner import EcdsaCosigner, _Signing
from coffer.mpc.service.server import run_cosigner

FAULT = os.environ.get("COFFER_TEST_FAULT", "round2-vole")


# Where "round1-ot" flips a bit: inside the OT-extension rows of a round-1 message (after the
# 38-byte header and the 32-byte commitment), the offset tests/mpc/test_ecdsa_malicious.py uses.
OT_ROW_OFFSET = 38 + 32 + 5000


class EvilCosigner(EcdsaCosigner):
    """Corrupts its own messages before sealing them, as COFFER_TEST_FAULT says: "round2-vole"
    flips a byte of the round-2 VOLE answer, "round1-ot" a bit of the round-1 OT-extension rows."""

    def _seal(self, signing: _Signing, round_number: int, out: dict[int, bytes]) -> dict[str, str]:
        if round_number == 2 and FAULT == "round2-vole":
            out = {peer: message[:-1] + bytes([message[-1] ^ 1]) for peer, message in out.items()}
        if round_number == 1 and FAULT == "round1-ot":
            out = {peer: message[:OT_ROW_OFFSET] + bytes([message[OT_ROW_OFFSET] ^ 0x10]) + message[OT_ROW_OFFSET + 1:]
                   for peer, message in out.items()}
        return super()._seal(signing, round_number, out)

    def status(self, data: bytes) -> dict[str, Any]:
        return {**super().status(data), "evil": FAULT}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--id", type=int, required=True)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--engine", action="append", default=[])
    arguments = parser.parse_args()
    run_cosigner(arguments.home, arguments.id, arguments.port, engines=tuple(arguments.engine or ("frost", "ecdsa")),
                 ecdsa_class=EvilCosigner)


if __name__ == "__main__":
    main()
