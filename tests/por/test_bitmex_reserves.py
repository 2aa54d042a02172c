"""BitMEX reserves YAML: written from the reserves document, read back by an independent strict reader."""

from __future__ import annotations

import json

import pytest
import yaml

from coffer.por.bitmex import read_reserves_yaml
from coffer.por.errors import BitmexFormatError
from tests.por.conftest import Published


def test_reserves_yaml_round_trip(published: Published) -> None:
    """Every address, type, descriptor and balance survives the round trip, and the totals match."""
    document = json.loads((published.directory / "reserves-BTC.json").read_text())
    read = read_reserves_yaml((published.directory / "reserves-BTC.yaml").read_text())
    assert (document["height"], document["chain"], document["total"]) == (read.height, read.chain, read.total)
    assert (2, 3) == (read.threshold, read.signer_count)
    assert [(e["address"], e["descriptor"], e["balance"]) for e in document["entries"]] == \
        [(a.addr, a.script, a.balance) for a in read.addresses]
    assert ["multisig_wsh", "multisig_tr", "wpkh"] == [a.addr_type for a in read.addresses]
    for address in read.addresses:
        assert any(key in address.script for key in read.xpubs)


def _mutated(published: Published, change) -> str:  # type: ignore[no-untyped-def]
    data = yaml.safe_load((published.directory / "reserves-BTC.yaml").read_text())
    change(data)
    return str(yaml.safe_dump(data))


@pytest.mark.parametrize("change", [
    lambda d: d.update(total=d["total"] + 1),
    lambda d: d.update(extra=1),
    lambda d: d.pop("claim"),
    lambda d: d["address"][0].update(balance=-1),
    lambda d: d["address"][0].update(addr_type="p2pk"),
    lambda d: d["address"].append(dict(d["address"][0], balance=0)),
    lambda d: d["address"][0].pop("script"),
], ids=["total", "unknown key", "no claim", "negative", "type", "duplicate", "no script"])
def test_reserves_reader_is_strict(published: Published, change) -> None:  # type: ignore[no-untyped-def]
    """Wrong totals, unknown or missing keys, negative balances, unknown types and duplicates are refused."""
    with pytest.raises(BitmexFormatError):
        read_reserves_yaml(_mutated(published, change))
