"""BIP-FROST signing draft vectors (29467ac): every valid and every error case of every file."""

from __future__ import annotations

import re
from typing import Any

import coincurve
import pytest

from coffer.mpc import errors
from coffer.mpc.frost.ciphersuite import Tweak
from coffer.mpc.frost.taproot import apply_tweaks, bip340_verify
from coffer.mpc.hazmat import bip_frost
from coffer.mpc.hazmat.group import SECP256K1

from .frost_helpers import load_json

FOLDER = "bip-frost-signing/"


def _hex(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


def _cases(filename: str, kinds: tuple[str, ...]) -> list[Any]:
    data = load_json(FOLDER + filename)
    params = []
    for group in data.get("test_groups", [data]):
        for kind in kinds:
            for case in group.get(kind, []):
                label = f"{group.get('tg_id', 'all')}-{kind}-{case['tc_id']}"
                params.append(pytest.param(group, case, id=label))
    return params


def _signers(group: dict[str, Any], case: dict[str, Any]) -> bip_frost.SignersContext:
    return bip_frost.SignersContext(
        n=group["n"], t=group["t"], ids=tuple(case["ids"]),
        pubshares=tuple(bytes.fromhex(group["pubshares"][i]) for i in case["pubshare_indices"]),
        thresh_pk=bytes.fromhex(group["thresh_pk"]))


def _tweak_lists(group: dict[str, Any], case: dict[str, Any]) -> tuple[list[bytes], list[bool]]:
    if "tweak_indices" in case:
        return [bytes.fromhex(group["tweaks"][i]) for i in case["tweak_indices"]], case["is_xonly"]
    return [bytes.fromhex(t) for t in case.get("tweaks", [])], case.get("is_xonly", [])


_MESSAGE_ERRORS: list[tuple[str, type[Exception]]] = [
    (r"The signer's id must be present", errors.InvalidIdentifier),
    (r"The participant identifier list contains duplicate", errors.DuplicateIdentifier),
    (r"The signer's pubshare must be included", errors.InvalidKeyMaterial),
    (r"Invalid pubshare at index (\d+)", errors.InvalidKeyMaterial),
    (r"The participant identifier at index \d+ is out of range", errors.InvalidIdentifier),
    (r"The provided key material is incorrect", errors.InvalidKeyMaterial),
    (r"The tweak value is out of range", errors.InvalidTweak),
    (r"The result of tweaking cannot be infinity", errors.InvalidTweak),
    (r"The tweaks and is_xonly arrays", errors.InvalidTweak),
    (r"The tweak must be a 32-byte array", errors.InvalidTweak),
    (r"The number of signers must be between t and n", errors.InsufficientSigners),
    (r"The signer's secret share value is out of range", errors.InvalidScalar),
    (r"first secnonce value is out of range", errors.NonceReuse),
    (r"second secnonce value is out of range", errors.InvalidScalar),
    (r"The psigs and ids arrays must have the same length", errors.InvalidParameters),
]


def _check_error(raised: BaseException, expected: dict[str, Any], ids: list[int] | None) -> None:
    """The typed error corresponds to the draft's error, naming the same participant."""
    if expected["type"] == "ValueError":
        for pattern, error_type in _MESSAGE_ERRORS:
            match = re.match(pattern, expected["message"])
            if match:
                assert isinstance(raised, error_type), (raised, expected)
                if match.groups() and ids is not None:
                    assert isinstance(raised, errors.InvalidKeyMaterial)
                    assert ids[int(match.group(1))] + 1 == raised.identifier
                return
        raise AssertionError(f"unmapped vector error {expected}")
    position = expected["signer_index"]
    blamed = None if position is None else (position + 1 if ids is None else ids[position] + 1)
    if expected["contrib"] == "psig":
        assert isinstance(raised, errors.InvalidSignatureShare)
        assert (blamed,) == raised.culprits
    else:
        assert isinstance(raised, errors.InvalidNonceCommitment), raised
        assert blamed == raised.sender


@pytest.mark.parametrize(("group", "case"), _cases("nonce_gen_vectors.json", ("valid_tests",)))
def test_nonce_gen(group: dict[str, Any], case: dict[str, Any]) -> None:
    """NonceGen with fixed randomness gives the vector's secret and public nonces."""
    secnonce, pubnonce = bip_frost.nonce_gen_internal(
        bytes.fromhex(case["rand_"]), _hex(case["secshare"]), _hex(case["pubshare"]),
        _hex(case["thresh_pk"]), _hex(case["msg"]), _hex(case["extra_in"]))
    assert case["expected"] == [bytes(secnonce).hex().upper(), pubnonce.hex().upper()]


@pytest.mark.parametrize(("group", "case"), _cases("nonce_agg_vectors.json", ("valid_tests", "error_tests")))
def test_nonce_agg(group: dict[str, Any], case: dict[str, Any]) -> None:
    """NonceAgg sums public nonces (infinity as zeros) and blames a malformed one's sender."""
    pubnonces = [bytes.fromhex(group["pubnonces"][i]) for i in case["pubnonce_indices"]]
    if "expected" in case:
        assert case["expected"] == bip_frost.nonce_agg(pubnonces).hex().upper()
        return
    with pytest.raises(errors.MpcError) as raised:
        bip_frost.nonce_agg(pubnonces)
    _check_error(raised.value, case["error"], None)


def _sign_case(group: dict[str, Any], case: dict[str, Any]) -> tuple[bytes, bip_frost.SessionContext]:
    tweaks, is_xonly = _tweak_lists(group, case)
    context = bip_frost.SessionContext(
        bytes.fromhex(case["aggnonce"]), _signers(group, case), tuple(tweaks), tuple(is_xonly),
        bytes.fromhex(case["msg"]))
    secnonce = bytearray.fromhex(group["secnonces"][case["secnonce_index"]])
    secshare = bytes.fromhex(group["secshares"][case["secshare_index"]])
    return bip_frost.sign(secnonce, secshare, case["my_id"], context), context


SIGN_CASES = (_cases("sign_verify_vectors.json", ("valid_tests", "sign_error_tests"))
              + _cases("tweak_vectors.json", ("valid_tests", "error_tests")))


@pytest.mark.parametrize(("group", "case"), SIGN_CASES)
def test_sign(group: dict[str, Any], case: dict[str, Any]) -> None:
    """Sign (with and without tweaks) gives the vector's partial signature, which then verifies."""
    if "error" in case:
        with pytest.raises(errors.MpcError) as raised:
            _sign_case(group, case)
        _check_error(raised.value, case["error"], case["ids"])
        return
    psig, context = _sign_case(group, case)
    assert case["expected"] == psig.hex().upper()
    pubnonces = [bytes.fromhex(group["pubnonces"][i]) for i in case["pubnonce_indices"]]
    index = case["ids"].index(case["my_id"])
    bip_frost.partial_sig_verify(psig, pubnonces, context.signers, list(context.tweaks),
                                 list(context.is_xonly), context.msg, index)


def test_signing_wipes_the_secret_nonce() -> None:
    """After Sign the caller's secnonce is all zeros, and signing again with it is refused as reuse."""
    group = load_json(FOLDER + "sign_verify_vectors.json")["test_groups"][0]
    case = group["valid_tests"][0]
    context = bip_frost.SessionContext(
        bytes.fromhex(case["aggnonce"]), _signers(group, case), (), (), bytes.fromhex(case["msg"]))
    secnonce = bytearray.fromhex(group["secnonces"][case["secnonce_index"]])
    secshare = bytes.fromhex(group["secshares"][case["secshare_index"]])
    bip_frost.sign(secnonce, secshare, case["my_id"], context)
    assert bytes(64) == bytes(secnonce)
    with pytest.raises(errors.NonceReuse):
        bip_frost.sign(secnonce, secshare, case["my_id"], context)


@pytest.mark.parametrize(("group", "case"), _cases("sign_verify_vectors.json", ("verify_fail_tests", "verify_error_tests")))
def test_partial_sig_verify_failures(group: dict[str, Any], case: dict[str, Any]) -> None:
    """A wrong partial signature names its signer; malformed inputs raise the mapped error."""
    pubnonces = [bytes.fromhex(group["pubnonces"][i]) for i in case["pubnonce_indices"]]
    signers = _signers(group, case)
    with pytest.raises(errors.MpcError) as raised:
        bip_frost.partial_sig_verify(bytes.fromhex(case["psig"]), pubnonces, signers, [], [],
                                     bytes.fromhex(case["msg"]), case["signer_index"])
    if "error" in case:
        _check_error(raised.value, case["error"], case["ids"])
    else:
        assert isinstance(raised.value, errors.InvalidSignatureShare)
        assert (case["ids"][case["signer_index"]] + 1,) == raised.value.culprits


@pytest.mark.parametrize(("group", "case"), _cases("sig_agg_vectors.json", ("valid_tests", "error_tests")))
def test_sig_agg(group: dict[str, Any], case: dict[str, Any]) -> None:
    """PartialSigAgg gives the vector's signature, valid under the tweaked key for us and coincurve."""
    tweaks, is_xonly = _tweak_lists(group, case)
    message = bytes.fromhex(case["msg"])
    context = bip_frost.SessionContext(
        bytes.fromhex(case["aggnonce"]), _signers(group, case), tuple(tweaks), tuple(is_xonly), message)
    psigs = [bytes.fromhex(psig) for psig in case["psigs"]]
    if "error" in case:
        with pytest.raises(errors.MpcError) as raised:
            bip_frost.partial_sig_agg(psigs, context)
        _check_error(raised.value, case["error"], case["ids"])
        return
    signature = bip_frost.partial_sig_agg(psigs, context)
    assert case["expected"] == signature.hex().upper()
    key = apply_tweaks(SECP256K1.deserialize_element(bytes.fromhex(group["thresh_pk"])),
                       [Tweak(t, x) for t, x in zip(tweaks, is_xonly, strict=True)]).key
    bip340_verify(SECP256K1.x_bytes(key), message, signature)
    assert coincurve.PublicKeyXOnly(SECP256K1.x_bytes(key)).verify(signature, message)


@pytest.mark.parametrize(("group", "case"), _cases("det_sign_vectors.json", ("valid_tests", "error_tests")))
def test_deterministic_sign(group: dict[str, Any], case: dict[str, Any]) -> None:
    """The hazmat-only DeterministicSign reproduces the vector's public nonce and partial signature."""
    tweaks, is_xonly = _tweak_lists(group, case)

    def run() -> tuple[bytes, bytes]:
        return bip_frost.deterministic_sign(
            bytes.fromhex(group["secshares"][case["secshare_index"]]), case["my_id"],
            _hex(case["aggothernonce"]), _signers(group, case), tweaks, is_xonly,
            bytes.fromhex(case["msg"]), _hex(case["rand"]))

    if "error" in case:
        with pytest.raises(errors.MpcError) as raised:
            run()
        _check_error(raised.value, case["error"], case["ids"])
        return
    pubnonce, psig = run()
    assert case["expected"] == [pubnonce.hex().upper(), psig.hex().upper()]
