"""A compromised coordinator against real DKLs23 (threshold-ECDSA) co-signer processes: it holds
the coordinator's whole home but no administrator key. Each attack is refused by the co-signers
naming the rule, and the legitimate version signed by the real quorum succeeds."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from coffer.keyholder.governance import ActionKind
from coffer.keyholder.lifecycle import dkg_content, reshare_content
from coffer.mpc.ecdsa_service.cosigner import DKG_PROTOCOL, DKG_SUITE_NAME
from coffer.mpc.ecdsa_service.harness import EcdsaCluster, start_ecdsa_cluster
from coffer.mpc.service import CosignerClient, CosignerRefused

COSIGNERS = (1, 2, 3)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EcdsaCluster]:
    started = start_ecdsa_cluster(Path(tmp_path_factory.mktemp("adversary-ecdsa")), COSIGNERS)
    try:
        yield started
    finally:
        started.stop()


def _client(cluster: EcdsaCluster, cosigner: int) -> CosignerClient:
    return CosignerClient(cosigner, cluster.ports[cosigner], cluster.tls, batching=False)


def test_ecdsa_dkg_with_simulated_participants_is_refused(cluster: EcdsaCluster) -> None:
    """Attack 2 (issue 16) on DKLs23: a DKG naming co-signer 1 and two host keys the attacker
    simulates is refused (no action: governance.missing; made-up administrators:
    governance.unknown_admin); the quorum's 2-of-3 key is then made and re-shared."""
    real = bytes.fromhex(_client(cluster, 1).call("/v1/ecdsa/hostkey", {})["hostpubkey"])
    simulated = [DKG_PROTOCOL.hostpubkey_gen(secrets.token_bytes(32)) for _ in range(2)]
    hostpubkeys = [real, *simulated]
    body = {"dkg_session": secrets.token_hex(32), "key_id": "e2", "threshold": 2,
            "hostpubkeys": [h.hex() for h in hostpubkeys]}
    forged = cluster.quorum.impostors().approve(ActionKind.DKG, "e2", [f"cosigner-{c}" for c in COSIGNERS],
                                              dkg_content(DKG_SUITE_NAME, 2, list(zip(COSIGNERS, hostpubkeys,
                                                                                       strict=True))))
    for rule, attempt in (("governance.missing", body),
                          ("governance.unknown_admin", {**body, "action": forged.to_json()})):
        with pytest.raises(CosignerRefused) as caught:
            _client(cluster, 1).call("/v1/ecdsa/dkg/step1", attempt)
        assert rule == caught.value.rule
    assert [] == [k for k in cluster.status(1)["keys"] if k["key_id"] == "e2"]
    key = cluster.coordinator.create_key("e2", 2)
    assert 2 == key.threshold
    holders = [(c, bytes.fromhex(_client(cluster, c).call("/v1/ecdsa/hostkey", {})["hostpubkey"])) for c in (1, 2)]
    minority = cluster.quorum.approve(ActionKind.RESHARE, "e2", ["cosigner-1", "cosigner-2"],
                                      reshare_content(holders, holders, 1, [3], minority_threshold=True))
    with pytest.raises(CosignerRefused) as caught:
        cluster.coordinator.reshare("e2", revoke=[3], new_threshold=1, action=minority)
    assert "governance.threshold" == caught.value.rule
    assert 2 == cluster.coordinator.reshare("e2", revoke=[3]).version
