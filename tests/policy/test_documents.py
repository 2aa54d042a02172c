"""Request, approval and attestation documents: canonical, strict, round-tripping; fuzzed."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coffer.policy import (
    MalformedDocument,
    RequestKind,
    WithdrawalRequest,
    parse_approval,
    parse_request,
    parse_signed_decision,
)
from coffer.policy.request import ASSETS

from .conftest import NOW_S, Coordinator, World

requests_strategy = st.builds(
    WithdrawalRequest,
    kind=st.sampled_from(list(RequestKind)),
    asset=st.sampled_from(sorted(ASSETS)),
    amount_minor=st.integers(min_value=1, max_value=(1 << 128) - 1),
    destination=st.from_regex(r"[A-Za-z0-9:._-]{1,128}", fullmatch=True),
    source_wallet=st.sampled_from(["auto", "hot", "cold"]),
    account=st.from_regex(r"[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True),
    fee_policy=st.sampled_from(["economy", "normal", "priority"]),
    nonce=st.binary(min_size=16, max_size=16).map(bytes.hex),
    expires_at_s=st.integers(min_value=0, max_value=1 << 40),
    initiator=st.from_regex(r"(client:)?[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True),
)


@given(requests_strategy)
@settings(max_examples=200, deadline=None)
def test_request_round_trips(request: WithdrawalRequest) -> None:
    """Every valid request parses back from its encoding to itself, with the same digest."""
    assert request == parse_request(request.encode())
    assert request.digest() == parse_request(request.encode()).digest()


@given(requests_strategy, st.data())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_one_byte_changed_is_refused_or_another_request(request: WithdrawalRequest, data: st.DataObject) -> None:
    """A request with one byte changed is refused, or it is a different request with a different digest."""
    encoded = bytearray(request.encode())
    index = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    value = data.draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != encoded[index]))
    encoded[index] = value
    try:
        parsed = parse_request(bytes(encoded))
    except MalformedDocument:
        return
    assert request.digest() != parsed.digest()


@given(st.binary(max_size=600))
@settings(max_examples=300, deadline=None)
def test_random_bytes_never_crash_the_request_parser(data: bytes) -> None:
    """Arbitrary bytes are refused with MalformedDocument (or parse), never another exception."""
    try:
        parse_request(data)
    except MalformedDocument:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12)


@given(st.dictionaries(st.sampled_from(["type", "kind", "asset", "amount_minor", "destination", "source_wallet",
                                        "account", "fee_policy", "nonce", "expires_at_s", "initiator", "extra"]),
                       json_values, max_size=12))
@settings(max_examples=200, deadline=None)
def test_random_json_objects_never_crash_the_request_parser(doc: dict) -> None:
    """Arbitrary JSON objects with plausible keys are refused cleanly."""
    data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    for parser in (parse_request, parse_approval, parse_signed_decision):
        try:
            parser(data)
        except MalformedDocument:
            pass


def test_duplicate_key_refused(world: World) -> None:
    """A document that repeats a key is refused, naming the key."""
    encoded = world.request().encode()
    doubled = encoded[:-1] + b',"nonce":"' + b"1" * 32 + b'"}'
    with pytest.raises(MalformedDocument) as caught:
        parse_request(doubled)
    assert "nonce" == caught.value.field


def test_unknown_field_refused(world: World) -> None:
    """A document with an extra field is refused."""
    doc = json.loads(world.request().encode())
    doc["memo"] = "x"
    with pytest.raises(MalformedDocument) as caught:
        parse_request(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
    assert "memo" == caught.value.field


def test_float_amount_refused(world: World) -> None:
    """An amount written as a float is refused: money is integers."""
    encoded = world.request().encode().replace(b'"amount_minor":500000', b'"amount_minor":500000.0')
    with pytest.raises(MalformedDocument):
        parse_request(encoded)


def test_non_canonical_encoding_refused(world: World) -> None:
    """Whitespace or reordered keys are refused: one request has one encoding."""
    with pytest.raises(MalformedDocument):
        parse_request(world.request().encode().replace(b",", b", ", 1))


def test_every_field_changes_the_digest(world: World) -> None:
    """Changing any field of a request changes its digest."""
    base = world.request()
    changes = dict(kind=RequestKind.SWEEP, asset="ETH", amount_minor=500_001, destination="other",
                   source_wallet="cold", account="acct2", fee_policy="priority", nonce="ff" * 16,
                   expires_at_s=NOW_S, initiator="ivan")
    digests = {dataclasses.replace(base, **{name: value}).digest() for name, value in changes.items()}
    assert len(changes) == len(digests)
    assert base.digest() not in digests


def test_approval_and_attestation_round_trip(world: World, coordinator: Coordinator) -> None:
    """Approvals and HSM attestations parse back from their encodings."""
    request = world.request(amount_minor=5_000_000)
    approval = world.approve("bob", request)
    assert approval == parse_approval(approval.encode())
    signed = coordinator.attest(request, (approval,))
    assert signed == parse_signed_decision(signed.encode())


def test_attestation_with_any_byte_changed_is_refused(world: World, coordinator: Coordinator) -> None:
    """Every one-byte change to an encoded attestation fails to parse or fails verification."""
    from coffer.policy import AttestationRefused, verify_attestation

    request = world.request(amount_minor=5_000_000)
    encoded = coordinator.attest(request, (world.approve("bob", request),)).encode()

    @given(st.integers(min_value=0, max_value=len(encoded) - 1), st.integers(min_value=1, max_value=255))
    @settings(max_examples=300, deadline=None)
    def mutate(index: int, delta: int) -> None:
        changed = bytearray(encoded)
        changed[index] = (changed[index] + delta) % 256
        try:
            signed = parse_signed_decision(bytes(changed))
        except MalformedDocument:
            return
        with pytest.raises(AttestationRefused):
            verify_attestation(signed, coordinator.public_key)

    mutate()
