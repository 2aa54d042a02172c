"""Attack 4 of issue 16 against real cold signer processes: once a signer has refused under a halt,
the coordinator's own halt switch is resumed with officers it added as unsigned table rows, and
its HSM signs "not halted" notices; the signer still refuses (rule halt) because it checks the
resume against the officers it pinned at its ceremony. The real officers' resume lets the same
signers sign. (A halt a key holder never saw is not one it can hold on to.)"""

from __future__ import annotations

import datetime as dt

import nacl.signing
import pytest
import sqlalchemy as sa

from coffer.cold.errors import SignerRefused
from coffer.cold.service import signer_directory
from coffer.policy.approval import sign_approval
from coffer.policy.roles import Role
from coffer.recon.halt import OfficerSignature, resume_message
from coffer.recon.tables import officers as officer_table
from coffer.testing.governance import Quorum
from tests.cold.test_processes import APPROVER, DEST, Site, _funded_client, site  # noqa: F401 - `site` is a fixture


def _sealed_batch(site: Site, client: str) -> str:  # noqa: F811 - the imported fixture's name
    now = dt.datetime.now(dt.UTC)
    _funded_client(site, client, 40_000_000)
    submitted = site.desk.request(client, "BTC", 15_000_000, DEST, now=now)
    site.desk.approve(sign_approval(APPROVER, request=submitted.request, operator_id="bob", role=Role.APPROVER,
                                    expires_at_s=int(now.timestamp()) + 600), now=now)
    site.desk.dispatch(submitted.request.digest_hex, now=now)
    batch_id = site.coordinator.cold.seal_batch(now=now)
    assert batch_id is not None
    return batch_id


@pytest.mark.slow
def test_cold_signers_resume_only_for_their_pinned_officers(site: Site) -> None:  # noqa: F811
    """Officers added as plain rows of the coordinator's table resume its switch, but the cold signer
    processes keep refusing with rule halt; the pinned officers' resume makes them sign again."""
    coordinator = site.coordinator
    quorum = Quorum.generate()
    for signer_id in coordinator.signer_ids():  # the ceremony: each signer pins administrators and officers
        quorum.provision(signer_directory(site.home, signer_id))
    custody = coordinator.cold
    custody._halted = lambda: False  # a coordinator that ignores its own halt: the signers decide
    now = dt.datetime.now(dt.UTC)
    for officer_id in ("officer-1", "officer-2"):
        coordinator.halt.register_officer(officer_id, bytes(quorum.officers[officer_id].verify_key))
    first = _sealed_batch(site, "ursula")
    halt = coordinator.halt.trip("manual", {"by": "test"}, actor="officer:officer-1")
    with pytest.raises(SignerRefused) as caught:
        custody.sign_batch(first, now=now)
    assert "halt" == caught.value.rule
    coordinator.halt.resume(halt.halt_id, "checked", quorum.resume(halt.halt_id, "checked"), actor="officers")
    assert custody.sign_batch(first, now=now)  # the legitimate resume: a signed transaction
    second = _sealed_batch(site, "victor")
    halt = coordinator.halt.trip("manual", {"by": "test"}, actor="officer:officer-1")
    with pytest.raises(SignerRefused) as caught:  # the signers see this halt, as in the attack
        custody.sign_batch(second, now=now)
    assert "halt" == caught.value.rule
    made_up = {f"mallory-{i}": nacl.signing.SigningKey.generate() for i in (1, 2)}
    with coordinator.engine.begin() as conn:
        for officer_id, key in made_up.items():
            conn.execute(sa.insert(officer_table).values(officer_id=officer_id, public_key=bytes(key.verify_key).hex(),
                                                         registered_at=now.isoformat()))
    coordinator.halt.resume(halt.halt_id, "fine", [OfficerSignature(i, k.sign(resume_message(halt.halt_id, "fine"))
                                                                    .signature) for i, k in made_up.items()],
                            actor="attacker")
    assert not coordinator.halt.is_halted()  # the coordinator itself is fooled
    with pytest.raises(SignerRefused) as caught:
        custody.sign_batch(second, now=now)
    assert "halt" == caught.value.rule
