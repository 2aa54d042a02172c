"""Descriptors, checksums, BIP-129 records and the quorum draw."""

from __future__ import annotations

import pytest
from embit.descriptor import Descriptor

from coffer.cold.descriptor import CHANGE, RECEIVE, ColdWallet, descriptor_checksum, strip_checksum
from coffer.cold.draw import draw_quorum, verify_draw
from coffer.cold.errors import DescriptorError, DrawMismatch


def test_bip380_checksum_vectors() -> None:
    """The checksum matches the examples published in BIP-380."""
    assert "89f8spxm" == descriptor_checksum("raw(deadbeef)")
    assert "ml40v0wf" == descriptor_checksum(
        "pkh([d34db33f/44'/0'/0']xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL/1/*)")


def test_bad_or_missing_checksum_is_refused() -> None:
    """A descriptor without its checksum, or with a wrong one, is refused."""
    with pytest.raises(DescriptorError):
        strip_checksum("raw(deadbeef)")
    with pytest.raises(DescriptorError):
        strip_checksum("raw(deadbeef)#89f8spxn")


def test_wallet_round_trips_and_matches_embit(signer_set) -> None:  # type: ignore[no-untyped-def]
    """The wallet's descriptor parses back to itself and derives the addresses embit derives."""
    wallet = signer_set.wallet
    again = ColdWallet.from_descriptor(wallet.descriptor(RECEIVE))
    assert wallet == again
    embit = Descriptor.from_string(strip_checksum(wallet.descriptor(CHANGE)))
    from embit.networks import NETWORKS

    assert embit.derive(7).address(NETWORKS["regtest"]) == wallet.address(CHANGE, 7)
    assert wallet.address(RECEIVE, 0).startswith("bcrt1q")


def test_bsms_record_has_the_four_lines(signer_set) -> None:  # type: ignore[no-untyped-def]
    """The BIP-129 record has version, template with /**, path restrictions and the first address."""
    lines = signer_set.wallet.bsms_record().splitlines()
    assert "BSMS 1.0" == lines[0]
    assert lines[1].startswith("wsh(sortedmulti(3,") and "/**" in lines[1]
    assert "/0/*,/1/*" == lines[2]
    assert signer_set.wallet.address(RECEIVE, 0) == lines[3]


def test_bad_thresholds_and_duplicate_keys_are_refused(signer_set) -> None:  # type: ignore[no-untyped-def]
    """m must be within 1..n and a key may not appear twice."""
    keys = signer_set.wallet.keys
    with pytest.raises(DescriptorError):
        ColdWallet(6, keys)
    with pytest.raises(DescriptorError):
        ColdWallet(0, keys)
    with pytest.raises(DescriptorError):
        ColdWallet(2, (keys[0], keys[0]))


def test_draw_recomputes_and_any_change_is_detected() -> None:
    """Anyone can recompute the draw; a changed input or a swapped nominee fails verification."""
    args = {"batch_id": "b-1", "tip_hash": "00" * 31 + "01", "unsigned_txid": "ab" * 32,
            "signer_ids": (1, 2, 3, 4, 5), "threshold": 3}
    draw = draw_quorum(**args)  # type: ignore[arg-type]
    verify_draw(draw)
    assert 3 == len(draw.nominated) and set(draw.nominated) <= {1, 2, 3, 4, 5}
    import dataclasses

    others = tuple(sorted(set(range(1, 6)) - set(draw.nominated)))
    forged = dataclasses.replace(draw, nominated=tuple(sorted(draw.nominated[:2] + others[:1])))
    with pytest.raises(DrawMismatch):
        verify_draw(forged)
    with pytest.raises(DrawMismatch):
        verify_draw(dataclasses.replace(draw, unsigned_txid="cd" * 32))


def test_draw_is_spread_over_all_signers() -> None:
    """Over many batches every signer is nominated, roughly m/n of the time."""
    counts = dict.fromkeys(range(1, 6), 0)
    for i in range(500):
        draw = draw_quorum(batch_id=f"b{i}", tip_hash="11" * 32, unsigned_txid="22" * 32,
                           signer_ids=(1, 2, 3, 4, 5), threshold=3)
        for s in draw.nominated:
            counts[s] += 1
    assert all(220 < c < 380 for c in counts.values()), counts


def test_redraw_excludes_a_silent_nominee() -> None:
    """A redraw after a timeout never nominates the excluded signer and records the attempt."""
    first = draw_quorum(batch_id="b", tip_hash="11" * 32, unsigned_txid="22" * 32, signer_ids=(1, 2, 3, 4, 5),
                        threshold=3)
    silent = first.nominated[0]
    second = draw_quorum(batch_id="b", tip_hash="11" * 32, unsigned_txid="22" * 32, signer_ids=(1, 2, 3, 4, 5),
                         threshold=3, timed_out=((silent,),))
    assert silent not in second.nominated
    assert (1, (silent,)) == (second.attempt, second.excluded)
    verify_draw(second)
