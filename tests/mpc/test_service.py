"""Co-signer services as real processes over mutual TLS: DKG, signing, refusals, refresh, revocation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from nacl.signing import VerifyKey

from coffer.canonical import canonical_json
from tests.mpc.service_harness import Cluster, start_cluster

STATEMENT = b"coffer-por-statement/1\n" + canonical_json({"asset": "BTC", "height": 101, "solvent": True})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = start_cluster(Path(tmp_path_factory.mktemp("mpc-home")))
    try:
        started.mpc.dkg("publication", "ed25519", 3)
        started.mpc.dkg("hot-btc", "taproot", 3)
        yield started
    finally:
        started.stop()


def test_dkg_gives_one_group_key(cluster: Cluster) -> None:
    """A 3-of-5 DKG among five co-signer processes leaves every co-signer with the same group key."""
    key = cluster.mpc.key("hot-btc")
    assert 3 == key.threshold
    assert [1, 2, 3, 4, 5] == [m.cosigner for m in key.members]
    for cosigner in range(1, 6):
        status = cluster.client(cosigner).call("/v1/status", {})
        held = {k["key_id"]: k for k in status["keys"]}
        assert key.public.to_bytes().hex() == held["hot-btc"]["public_package"]


def test_publication_signature_verifies_with_pynacl(cluster: Cluster) -> None:
    """The Ed25519 group key signs a proof-of-reserves statement that libsodium verifies."""
    key = cluster.mpc.key("publication")
    signature = cluster.mpc.sign_publication("publication", STATEMENT, cluster.attest_publication(STATEMENT),
                                             cosigners=[2, 4, 5])
    VerifyKey(key.publication_public_key()).verify(STATEMENT, signature)
