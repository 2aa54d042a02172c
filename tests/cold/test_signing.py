"""Batch PSBTs signed by a drawn quorum of signers; spends judged by Bitcoin Core's consensus code."""

from __future__ import annotations

import dataclasses
import hashlib

import pbk
import pytest
from embit.psbt import PSBT

from coffer.cold.bundle import ApprovedPayment, SigningBundle
from coffer.cold.descriptor import CHANGE, RECEIVE, ColdWallet, KeyOrigin
from coffer.cold.draw import draw_quorum
from coffer.cold.errors import InsufficientFunds, NotRegistered, PsbtInvalid, SignerRefused
from coffer.cold.psbt import Payment, Utxo, build_batch_psbt, combine_partial_signatures, finalize, parse_psbt
from coffer.cold.tip import check_headers
from coffer.testing.headers import mine_headers

from .conftest import NOW, SignerSet

DEST_1 = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
DEST_2 = "bcrt1qft5p2uhsdcdc3l2ua4ap5qqfg4pjaqlp250x7us7a8qqhrxrxfsqseac85"
HEADERS = tuple(mine_headers(3, time_s=int(NOW.timestamp())))  # a valid regtest header chain from genesis; its last header is the draw's tip
TIP = check_headers(HEADERS, network="regtest")[-1].block_hash


def _utxos(wallet: ColdWallet) -> list[Utxo]:
    return [Utxo(hashlib.sha256(f"coin{i}".encode()).hexdigest(), i % 3, 50_000_000 + i, RECEIVE, i)
            for i in range(4)]


def _payment(request_id: str, destination: str, amount: int) -> ApprovedPayment:
    return ApprovedPayment({"request_id": request_id, "destination": destination, "amount": amount},
                           ({"approver": "op-2"},), {"hsm": "attestation"})


def _bundle(signer_set: SignerSet, payments: list[tuple[str, str, int]], *, batch_id: str = "batch-1",
            plan_payments: list[Payment] | None = None) -> tuple[SigningBundle, PSBT]:
    for request_id, destination, amount in payments:
        signer_set.guard.approved[request_id] = (destination, amount)
    plan = build_batch_psbt(signer_set.wallet, _utxos(signer_set.wallet),
                            plan_payments or [Payment(d, a) for _, d, a in payments], fee_rate_sat_vb=5,
                            change_index=0)
    txid = plan.psbt.tx.txid().hex()
    draw = draw_quorum(batch_id=batch_id, tip_hash=TIP, unsigned_txid=txid, signer_ids=(1, 2, 3, 4, 5),
                       threshold=3)
    bundle = SigningBundle(signer_set.wallet.wallet_id, batch_id, plan.psbt.serialize(),
                           tuple(_payment(*p) for p in payments), draw, HEADERS)
    return bundle, plan.psbt


def _consensus_verdicts(raw_tx: bytes, psbt: PSBT) -> list[bool]:
    tx = pbk.Transaction(raw_tx)
    spent = [pbk.TransactionOutput(pbk.ScriptPubkey(bytes(i.witness_utxo.script_pubkey.data)), i.witness_utxo.value)
             for i in psbt.inputs]
    data = pbk.script.PrecomputedTransactionData(tx, spent)
    verdicts = []
    for index, inp in enumerate(psbt.inputs):
        spk = pbk.ScriptPubkey(bytes(inp.witness_utxo.script_pubkey.data))
        verdicts.append(bool(spk.verify(inp.witness_utxo.value, tx, data, index, pbk.ScriptVerificationFlags.ALL)))
    return verdicts


def _sign_with_nominees(signer_set: SignerSet, bundle: SigningBundle) -> list[PSBT]:
    nominated = [s for s in signer_set.signers if s.signer_id in bundle.draw.nominated]
    return [parse_psbt(s.sign(bundle, NOW)) for s in nominated]


def test_quorum_signs_and_core_consensus_accepts(signer_set: SignerSet) -> None:
    """Three nominated signers sign a two-payment batch; Bitcoin Core's script check accepts every input."""
    bundle, base = _bundle(signer_set, [("r1", DEST_1, 1_000_000), ("r2", DEST_2, 2_500_000)])
    signed = _sign_with_nominees(signer_set, bundle)
    raw = finalize(combine_partial_signatures(base, signed))
    assert [True] * len(base.inputs) == _consensus_verdicts(raw, base)
    assert ["r1", "r2"] * 3 == signer_set.guard.signed


def test_a_flipped_signature_byte_fails_consensus(signer_set: SignerSet) -> None:
    """Bitcoin Core's consensus code rejects the spend when one signature byte is changed."""
    bundle, base = _bundle(signer_set, [("r1", DEST_1, 1_000_000)])
    signed = _sign_with_nominees(signer_set, bundle)
    combined = combine_partial_signatures(base, signed)
    pub, sig = next(iter(combined.inputs[0].partial_sigs.items()))
    combined.inputs[0].partial_sigs[pub] = sig[:10] + bytes([sig[10] ^ 1]) + sig[11:]
    raw = finalize(combined)
    assert False is _consensus_verdicts(raw, base)[0]


def test_only_m_minus_one_signatures_cannot_finalise(signer_set: SignerSet) -> None:
    """Two of the three needed signatures are not enough to finalise the transaction."""
    bundle, base = _bundle(signer_set, [("r1", DEST_1, 1_000_000)])
    signed = _sign_with_nominees(signer_set, bundle)[:2]
    with pytest.raises(PsbtInvalid):
        finalize(combine_partial_signatures(base, signed))


def test_output_changed_after_approval_is_refused(signer_set: SignerSet) -> None:
    """Attack: the coordinator pays a different amount than approved; every signer refuses."""
    bundle, _ = _bundle(signer_set, [("r1", DEST_1, 1_000_000)], plan_payments=[Payment(DEST_1, 1_900_000)])
    for signer in signer_set.signers:
        if signer.signer_id in bundle.draw.nominated:
            with pytest.raises(SignerRefused) as caught:
                signer.sign(bundle, NOW)
            assert "outputs.not_approved" == caught.value.rule


def test_destination_swapped_after_approval_is_refused(signer_set: SignerSet) -> None:
    """Attack: the coordinator sends the approved amount to another address; refused."""
    bundle, _ = _bundle(signer_set, [("r1", DEST_1, 1_000_000)], plan_payments=[Payment(DEST_2, 1_000_000)])
    signer = next(s for s in signer_set.signers if s.signer_id in bundle.draw.nominated)
    with pytest.raises(SignerRefused) as caught:
        signer.sign(bundle, NOW)
    assert "outputs.not_approved" == caught.value.rule


def test_change_to_a_foreign_address_is_refused(signer_set: SignerSet) -> None:
    """Attack: the change output carries our derivation but pays a script that is not ours."""
    bundle, base = _bundle(signer_set, [("r1", DEST_1, 1_000_000)])
    from embit.script import Script, address_to_scriptpubkey

    base.outputs[-1].script_pubkey = Script(address_to_scriptpubkey(DEST_2).data)
    txid = base.tx.txid().hex()
    draw = draw_quorum(batch_id="batch-1", tip_hash=TIP, unsigned_txid=txid, signer_ids=(1, 2, 3, 4, 5),
                       threshold=3)
    forged = dataclasses.replace(bundle, psbt=base.serialize(), draw=draw)
    signer = next(s for s in signer_set.signers if s.signer_id in draw.nominated)
    with pytest.raises(SignerRefused) as caught:
        signer.sign(forged, NOW)
    assert "change.foreign" == caught.value.rule


def test_change_without_derivations_counts_as_an_unapproved_payment(signer_set: SignerSet) -> None:
    """Attack: change stripped of its derivations looks like an extra payment and is refused."""
    bundle, base = _bundle(signer_set, [("r1", DEST_1, 1_000_000)])
    base.outputs[-1].bip32_derivations = {}
    draw = draw_quorum(batch_id="batch-1", tip_hash=TIP, unsigned_txid=base.tx.txid().hex(),
                       signer_ids=(1, 2, 3, 4, 5), threshold=3)
    signer = next(s for s in signer_set.signers if s.signer_id in draw.nominated)
    with pytest.raises(SignerRefused) as caught:
        signer.sign(dataclasses.replace(bundle, psbt=base.serialize(), draw=draw), NOW)
    assert "outputs.not_approved" == caught.value.rule


def test_key_swapped_in_descriptor_is_refused(signer_set: SignerSet) -> None:
    """Attack: a descriptor with one key swapped is another wallet; signers refuse it at registration and signing."""
    wallet = signer_set.wallet
    from embit import bip32
    from embit.networks import NETWORKS

    intruder = bip32.HDKey.from_seed(b"\x07" * 32, version=NETWORKS["regtest"]["xprv"])
    account = intruder.derive("m/48h/1h/0h/2h").to_public()
    account.version = NETWORKS["regtest"]["xpub"]
    swapped = ColdWallet(3, wallet.keys[:4] + (KeyOrigin(intruder.my_fingerprint.hex(), "48h/1h/0h/2h",
                                                         account.to_base58()),), "regtest")
    victim = signer_set.signers[4]
    with pytest.raises(SignerRefused) as caught:
        victim.register(swapped.descriptor(RECEIVE), [swapped.address(RECEIVE, i) for i in range(5)], NOW)
    assert "register.key_missing" == caught.value.rule
    bundle, _ = _bundle(signer_set, [("r1", DEST_1, 1_000_000)])
    with pytest.raises(NotRegistered):
        signer_set.signers[0].sign(dataclasses.replace(bundle, wallet_id=swapped.wallet_id), NOW)


def test_registration_refuses_wrong_first_addresses(signer_set: SignerSet) -> None:
    """A coordinator that shows addresses not derived from the descriptor is refused."""
    wallet = signer_set.wallet
    shown = [wallet.address(CHANGE, i) for i in range(5)]
    with pytest.raises(SignerRefused) as caught:
        signer_set.signers[0].register(wallet.descriptor(RECEIVE), shown, NOW)
    assert "register.addresses" == caught.value.rule


def test_non_nominated_signer_refuses(signer_set: SignerSet) -> None:
    """A signer that the draw did not nominate refuses to sign."""
    bundle, _ = _bundle(signer_set, [("r1", DEST_1, 1_000_000)])
    outsider = next(s for s in signer_set.signers if s.signer_id not in bundle.draw.nominated)
    with pytest.raises(SignerRefused) as caught:
        outsider.sign(bundle, NOW)
    assert "draw.not_nominated" == caught.value.rule


def test_forged_draw_is_refused(signer_set: SignerSet) -> None:
    """A draw whose nominees were picked by hand does not recompute and is refused."""
    bundle, _ = _bundle(signer_set, [("r1", DEST_1, 1_000_000)])
    outsider = next(s for s in signer_set.signers if s.signer_id not in bundle.draw.nominated)
    forged_draw = dataclasses.replace(bundle.draw, nominated=tuple(sorted(bundle.draw.nominated[:2]
                                                                          + (outsider.signer_id,))))
    with pytest.raises(SignerRefused) as caught:
        outsider.sign(dataclasses.replace(bundle, draw=forged_draw), NOW)
    assert "draw.mismatch" == caught.value.rule


def test_replayed_requests_in_a_new_batch_are_refused(signer_set: SignerSet) -> None:
    """Attack: already-signed requests are bundled again into another transaction; refused."""
    bundle, _ = _bundle(signer_set, [("r1", DEST_1, 1_000_000)])
    _sign_with_nominees(signer_set, bundle)
    replay, _ = _bundle(signer_set, [("r1", DEST_1, 1_000_000), ("r9", DEST_2, 700_000)], batch_id="batch-2")
    signer = next(s for s in signer_set.signers if s.signer_id in replay.draw.nominated
                  and s.signer_id in bundle.draw.nominated)
    with pytest.raises(SignerRefused) as caught:
        signer.sign(replay, NOW)
    assert "request.already_signed" == caught.value.rule


def test_same_batch_again_returns_the_same_signatures(signer_set: SignerSet) -> None:
    """A coordinator retry of the very same batch gets the stored signatures, no new ones."""
    bundle, _ = _bundle(signer_set, [("r1", DEST_1, 1_000_000)])
    signer = next(s for s in signer_set.signers if s.signer_id in bundle.draw.nominated)
    assert signer.sign(bundle, NOW) == signer.sign(bundle, NOW)


def test_signing_while_halted_is_refused(signer_set: SignerSet) -> None:
    """No signer signs while a halt is in force."""
    bundle, _ = _bundle(signer_set, [("r1", DEST_1, 1_000_000)])
    signer_set.halt.halted = True
    for signer in signer_set.signers:
        with pytest.raises(SignerRefused) as caught:
            signer.sign(bundle, NOW)
        assert "halt" == caught.value.rule


def test_unapproved_request_is_refused(signer_set: SignerSet) -> None:
    """A request the policy guard does not approve stops the whole batch."""
    bundle, _ = _bundle(signer_set, [("r1", DEST_1, 1_000_000)])
    del signer_set.guard.approved["r1"]
    signer = next(s for s in signer_set.signers if s.signer_id in bundle.draw.nominated)
    with pytest.raises(SignerRefused) as caught:
        signer.sign(bundle, NOW)
    assert "policy.not_approved" == caught.value.rule


@pytest.mark.parametrize("mangle", ["garbage", "trailing", "truncated", "duplicate_input", "wrong_network"])
def test_malformed_psbts_are_refused_and_nothing_is_signed(signer_set: SignerSet, mangle: str) -> None:
    """Malformed PSBTs, trailing bytes, duplicate inputs and other-network addresses get typed errors."""
    if mangle == "wrong_network":
        with pytest.raises(PsbtInvalid):
            build_batch_psbt(signer_set.wallet, _utxos(signer_set.wallet),
                             [Payment("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", 10_000)], fee_rate_sat_vb=5,
                             change_index=0)
        return
    bundle, base = _bundle(signer_set, [("r1", DEST_1, 1_000_000)])
    raw = base.serialize()
    if mangle == "garbage":
        raw = b"psbt\xff" + b"\x00garbage"
    elif mangle == "trailing":
        raw = raw + b"\x00"
    elif mangle == "truncated":
        raw = raw[:-5]
    elif mangle == "duplicate_input":
        from embit.psbt import InputScope

        base.inputs.append(InputScope.parse(base.inputs[0].serialize(), vin=base.inputs[0].vin))
        raw = base.serialize()
    signer = next(s for s in signer_set.signers if s.signer_id in bundle.draw.nominated)
    with pytest.raises((PsbtInvalid, SignerRefused)):
        signer.sign(dataclasses.replace(bundle, psbt=raw), NOW)
    assert [] == signer_set.guard.signed


def test_insufficient_funds_is_a_typed_error(signer_set: SignerSet) -> None:
    """A batch larger than the cold coins is refused before any PSBT exists."""
    with pytest.raises(InsufficientFunds):
        build_batch_psbt(signer_set.wallet, _utxos(signer_set.wallet), [Payment(DEST_1, 10**10)],
                         fee_rate_sat_vb=5, change_index=0)


def test_bundle_round_trips_and_refuses_unknown_fields(signer_set: SignerSet) -> None:
    """The bundle parses back to itself; extra or duplicate fields are refused."""
    bundle, _ = _bundle(signer_set, [("r1", DEST_1, 1_000_000)])
    assert bundle == SigningBundle.from_json(bundle.to_json())
    from coffer.cold.errors import BundleInvalid

    with pytest.raises(BundleInvalid):
        SigningBundle.from_json(bundle.to_json()[:-1] + b',"extra":1}')
    with pytest.raises(BundleInvalid):
        SigningBundle.from_json(b'{"version":1,"version":1}')
