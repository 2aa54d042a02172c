"""Fuzzing the fill ingest API: any JSON only ever gets a typed error, and a refused batch writes nothing."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coffer.exchange.errors import ExchangeError
from coffer.exchange.ingest import ContractBook, FillLog
from coffer.exchange.model import Fill
from coffer.exchange.simulator import DEFAULT_CONTRACTS

_SCALARS = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(max_size=12) \
    | st.floats(allow_nan=True)
_FILL_LIKE = st.fixed_dictionaries({
    "fill_id": st.text(max_size=12) | st.integers(), "sequence": st.integers(-5, 5) | st.text(max_size=3),
    "account": st.text(max_size=12), "contract": st.sampled_from([c.contract_id for c in DEFAULT_CONTRACTS])
    | st.text(max_size=8), "side": st.sampled_from(["buy", "sell", "hold", ""]),
    "quantity": _SCALARS, "price_ticks": _SCALARS, "fee_minor": _SCALARS})
_ANY = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=5), max_leaves=15)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_FILL_LIKE | _ANY, min_size=1, max_size=4))
def test_random_fill_batches_are_typed_errors_and_all_or_nothing(batch: list[object]) -> None:
    """Parse-then-ingest of arbitrary JSON: an ExchangeError or a clean append; a refusal appends nothing."""
    log = FillLog(ContractBook(DEFAULT_CONTRACTS))
    decoded = json.loads(json.dumps(batch, allow_nan=True))
    try:
        fills = [Fill.from_json(item) for item in decoded]
    except ExchangeError:
        return
    before = (len(log), log.next_sequence)
    try:
        log.ingest(fills)
    except ExchangeError:
        assert before == (len(log), log.next_sequence)
        return
    assert len(log) == before[0] + len(fills)
