"""EthSpend: the transfer a co-signer re-derives; strict parsing and bounds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coffer.eth import EthSpend, EthSpendInvalid
from coffer.eth.spend import MAX_FEE_WEI_MAX, normalise_address

TO = "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"


def _spend(**changes: object) -> EthSpend:
    fields: dict[str, object] = {"kind": "withdrawal", "chain_id": 1337, "nonce": 0, "max_priority_fee_wei": 10**9,
                                 "max_fee_wei": 3 * 10**9, "gas": 21_000, "to": TO, "value_wei": 10**15, "path": ()}
    fields.update(changes)
    return EthSpend(**fields)  # type: ignore[arg-type]


def test_round_trip_and_digest_is_the_eip1559_signing_hash() -> None:
    """A spend survives JSON and hashes as keccak(0x02 || rlp(fields))."""
    spend = _spend()
    assert spend == EthSpend.from_json(spend.to_json())
    assert spend.tx().signing_hash() == spend.digest()
    assert TO == spend.to


@pytest.mark.parametrize(("changes", "rule"), [
    ({"gas": 50_000}, "eth.gas"),
    ({"max_fee_wei": MAX_FEE_WEI_MAX + 1}, "eth.fee"),
    ({"max_priority_fee_wei": 4 * 10**9}, "eth.fee"),
    ({"value_wei": 0}, "eth.value"),
    ({"path": (3,)}, "eth.path"),
    ({"kind": "deposit_sweep", "path": ()}, "eth.path"),
    ({"kind": "digest"}, "eth.kind"),
    ({"to": "0xABaBaBaBABabABabAbAbABAbABabababaBaBABab"}, "eth.address"),
])
def test_out_of_bounds_spends_are_refused(changes: dict[str, object], rule: str) -> None:
    """Gas, fees, value, path, kind and a bad EIP-55 checksum are each refused with their rule."""
    with pytest.raises(EthSpendInvalid) as refused:
        _spend(**changes)
    assert rule == refused.value.rule


def test_unknown_or_missing_fields_are_refused() -> None:
    """The JSON form has exactly the known fields (no room for a digest)."""
    data = _spend().to_json()
    with pytest.raises(EthSpendInvalid):
        EthSpend.from_json({**data, "digest": "00" * 32})
    data.pop("nonce")
    with pytest.raises(EthSpendInvalid):
        EthSpend.from_json(data)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["kind", "chain_id", "nonce", "gas", "to", "value_wei", "path", "x"]),
                       st.one_of(st.integers(), st.text(max_size=5), st.booleans(), st.none(),
                                 st.lists(st.integers(), max_size=2))))
def test_arbitrary_json_only_ever_gives_spend_invalid(data: dict[str, object]) -> None:
    """Garbage never parses into a spend and never raises anything but EthSpendInvalid."""
    with pytest.raises(EthSpendInvalid):
        EthSpend.from_json(data)


def test_lowercase_addresses_are_normalised() -> None:
    """Single-case addresses are accepted and checksummed."""
    assert TO == normalise_address(TO.lower())
