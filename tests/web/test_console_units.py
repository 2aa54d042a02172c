"""Pure parts of the console: the WebAuthn credential and assertion encodings, the single-use
ceremonies, the reserve-ratio series and chart."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from coffer.policy import ApprovalRefused, PolicyError
from coffer.policy.webauthn import WebAuthnAssertion, WebAuthnCredential
from coffer.web.console import CeremonyRefused
from coffer.web.console.parts import Ceremonies
from coffer.web.console.views import ratio_chart_svg, ratio_series

CREDENTIAL = WebAuthnCredential("localhost", ("http://localhost:8080",), b"\x01" * 16, b"\xa5" * 77)


def test_credential_round_trips_and_refuses_malformed() -> None:
    """A stored credential parses back to itself; unknown fields, non-canonical or oversized ones are refused."""
    assert CREDENTIAL == WebAuthnCredential.parse(CREDENTIAL.encode())
    for bad in (CREDENTIAL.encode().replace(b'"format"', b'"extra":1,"format"'), CREDENTIAL.encode() + b" ",
                b"{" + b" " * 3000 + b"}", b"not json", CREDENTIAL.encode().replace(b"localhost\"", b"\"", 1)):
        with pytest.raises(PolicyError):
            WebAuthnCredential.parse(bad)


def test_assertion_round_trips_and_refuses_truncation_and_trailing_bytes() -> None:
    """The proof encoding is exact: truncated or extended proofs are refused."""
    assertion = WebAuthnAssertion(b"\x01" * 16, b"\x02" * 37, b'{"type":"webauthn.get"}', b"\x30" * 70)
    encoded = assertion.encode()
    assert assertion == WebAuthnAssertion.parse(encoded)
    for bad in (encoded[:-1], encoded + b"\x00", b"", encoded[:3]):
        with pytest.raises(ApprovalRefused):
            WebAuthnAssertion.parse(bad)
    with pytest.raises(PolicyError):
        WebAuthnAssertion(b"\x01" * 2000, b"", b"", b"").encode()


def test_ceremony_is_single_use_purpose_bound_and_expires() -> None:
    """A ceremony answers once, only for its purpose, and not after its time."""
    clock = [0.0]
    ceremonies = Ceremonies(ttl_s=10, monotonic=lambda: clock[0])
    first = ceremonies.start("signin", "ann", b"c" * 32)
    assert "ann" == ceremonies.take(first, "signin").subject
    with pytest.raises(CeremonyRefused):
        ceremonies.take(first, "signin")
    second = ceremonies.start("approve", "ann", b"c" * 32)
    with pytest.raises(CeremonyRefused):
        ceremonies.take(second, "signin")
    third = ceremonies.start("signin", "ann", b"c" * 32)
    clock[0] = 11.0
    with pytest.raises(CeremonyRefused):
        ceremonies.take(third, "signin")


def test_ratio_series_and_chart() -> None:
    """Ratios per asset from run summaries, oldest first; no liabilities gives no ratio and still a chart."""
    runs = [SimpleNamespace(run_id=2, started_at="b", finished_at="b2", summary={"assets": [
                {"asset": "BTC", "backing": "150", "client_liabilities": "100"},
                {"asset": "ETH", "backing": "5", "client_liabilities": "0"}]}),
            SimpleNamespace(run_id=1, started_at="a", finished_at=None, summary={"assets": [
                {"asset": "BTC", "backing": "90", "client_liabilities": "100"}]}),
            SimpleNamespace(run_id=3, started_at="c", finished_at="c", summary={"error": "x"})]
    series = ratio_series(runs)
    assert [0.9, 1.5] == [p.ratio for p in series["BTC"]]
    assert [None] == [p.ratio for p in series["ETH"]]
    assert "latest 1.5000" in ratio_chart_svg("BTC", series["BTC"])
    assert "latest n/a" in ratio_chart_svg("ETH", series["ETH"])
    assert "&lt;x&gt;" in ratio_chart_svg("<x>", [])


def test_signer_probe_records_last_seen_and_errors() -> None:
    """A signer that answers gets a last-seen time; one that fails keeps its old time and shows the error."""
    from datetime import UTC, datetime

    from coffer.web.console.probe import SignerProbe

    class Client:
        def __init__(self) -> None:
            self.up = True

        def health(self) -> dict[str, object]:
            if not self.up:
                raise ConnectionRefusedError("down")
            return {"ok": True}

    one, two = Client(), Client()
    two.up = False
    probe = SignerProbe({"1": one, "2": two}, clock=lambda: datetime(2026, 11, 27, 12, 0, tzinfo=UTC))
    probe.probe_once()
    assert ("2026-11-27T12:00:00+00:00", None) == (probe.last_seen("1"), probe.last_seen("2"))
    assert "ConnectionRefusedError" == probe.last_error("2")
    one.up = False
    probe.probe_once()
    assert "2026-11-27T12:00:00+00:00" == probe.last_seen("1")
