"""ChillDKG (secp256k1) against every published vector of the BIP draft, errors included."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from coffer.mpc.dkg import chilldkg
from coffer.mpc.dkg import errors as dkg_errors
from coffer.mpc.dkg.errors import (
    DkgError,
    FaultyCoordinatorError,
    FaultyParticipantError,
    InvalidArgument,
    UnknownFaultyParticipantOrCoordinatorError,
)
from coffer.mpc.dkg.protocol import SessionParams
from coffer.mpc.dkg.suite import SECP256K1_CHILLDKG
from coffer.mpc.dkg.types import KeyShareOutput

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "bip-frost-dkg"

# The BIP's structural ValueError becomes our InvalidArgument (the caller's own input) or, when
# a received message has the wrong length, an error naming whoever sent it.
STRUCTURAL = (InvalidArgument, FaultyParticipantError, FaultyCoordinatorError)


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return data


def cases(name: str, kind: str) -> list[Any]:
    """Every (group, case) pair of one kind from a vector file, with readable ids."""
    data = load(name)
    groups = data.get("testGroups", [data])
    found = []
    for group in groups:
        for case in group.get(kind, []):
            found.append(pytest.param(group, case, id=f"tc{case['tcId']}"))
    return found


def params_of(raw: dict[str, Any]) -> SessionParams:
    return SessionParams(tuple(bytes.fromhex(key) for key in raw["hostpubkeys"]), raw["t"])


def h(value: str) -> bytes:
    return bytes.fromhex(value)


def check_output(expected: dict[str, Any], actual: KeyShareOutput) -> None:
    if expected["secshare"] is None:
        assert actual.secret_share is None
    else:
        assert actual.secret_share is not None
        assert h(expected["secshare"]) == SECP256K1_CHILLDKG.encode_scalar(actual.secret_share.value)
    assert h(expected["threshPk"]) == actual.group_public_key
    assert [h(p) for p in expected["pubshares"]] == [actual.public_shares[i + 1] for i in range(len(expected["pubshares"]))]


def check_error(expected: dict[str, Any], error: BaseException, comment: str) -> None:
    kind = expected["type"]
    if kind == "ValueError":
        assert isinstance(error, STRUCTURAL), repr(error)
        match = re.search(r"(?:id|index) (\d+)", comment)
        if isinstance(error, FaultyParticipantError) and match:
            assert int(match.group(1)) + 1 == error.culprit
        return
    cls = getattr(dkg_errors, kind)
    assert isinstance(error, cls), f"expected {kind}, got {error!r}"
    if "participantId" in expected:
        assert expected["participantId"] + 1 == error.culprit  # type: ignore[attr-defined]
    if "participantId1" in expected:
        assert (expected["participantId1"] + 1, expected["participantId2"] + 1) == error.culprits  # type: ignore[attr-defined]
    if "message" in expected:
        assert expected["message"] == getattr(error, "reason", str(error))


def raised(function: Any, *args: Any) -> DkgError:
    with pytest.raises(DkgError) as info:
        function(*args)
    return info.value


@pytest.mark.parametrize("group, case", cases("hostpubkey_gen_vectors.json", "validTestCases"))
def test_hostpubkey_gen_valid(group: dict[str, Any], case: dict[str, Any]) -> None:
    """hostpubkey_gen gives the published host public key."""
    assert h(case["expectedHostpubkey"]) == chilldkg.hostpubkey_gen(h(case["hostseckey"]))


@pytest.mark.parametrize("group, case", cases("hostpubkey_gen_vectors.json", "errorTestCases"))
def test_hostpubkey_gen_errors(group: dict[str, Any], case: dict[str, Any]) -> None:
    """hostpubkey_gen refuses bad host secret keys with the published error."""
    check_error(case["expectedError"], raised(chilldkg.hostpubkey_gen, h(case["hostseckey"])), case["comment"])


@pytest.mark.parametrize("group, case", cases("params_hash_vectors.json", "validTestCases"))
def test_params_hash_valid(group: dict[str, Any], case: dict[str, Any]) -> None:
    """params_hash gives the published hash."""
    assert h(case["expectedParamsHash"]) == chilldkg.params_hash(params_of(case["params"]))


@pytest.mark.parametrize("group, case", cases("params_hash_vectors.json", "errorTestCases"))
def test_params_hash_errors(group: dict[str, Any], case: dict[str, Any]) -> None:
    """params_hash refuses invalid parameters and names the culprits."""
    check_error(case["expectedError"], raised(chilldkg.params_hash, params_of(case["params"])), case["comment"])


@pytest.mark.parametrize("group, case", cases("participant_step1_vectors.json", "validTestCases"))
def test_participant_step1_valid(group: dict[str, Any], case: dict[str, Any]) -> None:
    """participant_step1 produces the published first message byte for byte."""
    _, pmsg1 = chilldkg.participant_step1(h(case["hostseckey"]), params_of(case["params"]), h(case["random"]))
    assert h(case["expectedPmsg1"]) == pmsg1


@pytest.mark.parametrize("group, case", cases("participant_step1_vectors.json", "errorTestCases"))
def test_participant_step1_errors(group: dict[str, Any], case: dict[str, Any]) -> None:
    """participant_step1 refuses bad inputs with the published error."""
    error = raised(chilldkg.participant_step1, h(case["hostseckey"]), params_of(case["params"]), h(case["random"]))
    check_error(case["expectedError"], error, case["comment"])


def step1(group: dict[str, Any]) -> Any:
    state1, pmsg1 = chilldkg.participant_step1(h(group["hostseckey"]), params_of(group["params"]), h(group["random"]))
    assert h(group["pmsg1"]) == pmsg1
    return state1


@pytest.mark.parametrize("group, case", cases("participant_step2_vectors.json", "validTestCases"))
def test_participant_step2_valid(group: dict[str, Any], case: dict[str, Any]) -> None:
    """participant_step2 produces the published CertEq signature."""
    _, pmsg2 = chilldkg.participant_step2(h(group["hostseckey"]), step1(group), h(case["cmsg1"]), h(group["auxRand"]))
    assert h(case["expectedPmsg2"]) == pmsg2


@pytest.mark.parametrize("group, case", cases("participant_step2_vectors.json", "errorTestCases"))
def test_participant_step2_errors(group: dict[str, Any], case: dict[str, Any]) -> None:
    """participant_step2 blames the published party for every bad coordinator message."""
    hostseckey = h(case.get("hostseckey", group["hostseckey"]))
    aux_rand = h(case.get("auxRand", group["auxRand"]))
    error = raised(chilldkg.participant_step2, hostseckey, step1(group), h(case["cmsg1"]), aux_rand)
    check_error(case["expectedError"], error, case["comment"])


def step2(group: dict[str, Any]) -> Any:
    state2, pmsg2 = chilldkg.participant_step2(h(group["hostseckey"]), step1(group), h(group["cmsg1"]),
                                               h(group["auxRand"]))
    assert h(group["pmsg2"]) == pmsg2
    return state2


@pytest.mark.parametrize("group, case", cases("participant_finalize_vectors.json", "validTestCases"))
def test_participant_finalize_valid(group: dict[str, Any], case: dict[str, Any]) -> None:
    """participant_finalize returns the published output and recovery data."""
    output, recovery = chilldkg.participant_finalize(step2(group), h(case["cmsg2"]))
    check_output(case["expectedOutput"]["dkgOutput"], output)
    assert h(case["expectedOutput"]["recoveryData"]) == recovery


@pytest.mark.parametrize("group, case", cases("participant_finalize_vectors.json", "errorTestCases"))
def test_participant_finalize_errors(group: dict[str, Any], case: dict[str, Any]) -> None:
    """participant_finalize blames the coordinator for a bad certificate."""
    error = raised(chilldkg.participant_finalize, step2(group), h(case["cmsg2"]))
    check_error(case["expectedError"], error, case["comment"])


@pytest.mark.parametrize("group, case", cases("participant_investigate_vectors.json", "errorTestCases"))
def test_participant_investigate(group: dict[str, Any], case: dict[str, Any]) -> None:
    """Investigation names the participant (or the coordinator) the vectors blame."""
    cmsg1 = h(group["cmsg1Pool"][case["cmsg1Index"]])
    with pytest.raises(UnknownFaultyParticipantOrCoordinatorError) as info:
        chilldkg.participant_step2(h(group["hostseckey"]), step1(group), cmsg1, h(group["auxRand"]))
    error = raised(chilldkg.participant_investigate, info.value, h(case["cinvMsg"]))
    check_error(case["expectedError"], error, case["comment"])


@pytest.mark.parametrize("group, case", cases("coordinator_step1_vectors.json", "validTestCases"))
def test_coordinator_step1_valid(group: dict[str, Any], case: dict[str, Any]) -> None:
    """coordinator_step1 aggregates into the published broadcast message."""
    pmsgs1 = [h(group["pmsg1Pool"][i]) for i in case["pmsg1Indices"]]
    _, cmsg1 = chilldkg.coordinator_step1(pmsgs1, params_of(case["params"]))
    assert h(case["expectedCmsg1"]) == cmsg1


@pytest.mark.parametrize("group, case", cases("coordinator_step1_vectors.json", "errorTestCases"))
def test_coordinator_step1_errors(group: dict[str, Any], case: dict[str, Any]) -> None:
    """coordinator_step1 refuses bad parameters and names participants with bad messages."""
    pmsgs1 = [h(group["pmsg1Pool"][i]) for i in case["pmsg1Indices"]]
    error = raised(chilldkg.coordinator_step1, pmsgs1, params_of(case["params"]))
    check_error(case["expectedError"], error, case["comment"])


def coordinator_state(group: dict[str, Any]) -> Any:
    state, cmsg1 = chilldkg.coordinator_step1([h(m) for m in group["pmsgs1"]], params_of(group["params"]))
    assert h(group["cmsg1"]) == cmsg1
    return state


@pytest.mark.parametrize("group, case", cases("coordinator_finalize_vectors.json", "validTestCases"))
def test_coordinator_finalize_valid(group: dict[str, Any], case: dict[str, Any]) -> None:
    """coordinator_finalize produces the published certificate, output and recovery data."""
    pmsgs2 = [h(group["pmsg2Pool"][i]) for i in case["pmsg2Indices"]]
    cmsg2, output, recovery = chilldkg.coordinator_finalize(coordinator_state(group), pmsgs2)
    expected = case["expectedOutput"]
    assert h(expected["cmsg2"]) == cmsg2
    check_output(expected["dkgOutput"], output)
    assert h(expected["recoveryData"]) == recovery


@pytest.mark.parametrize("group, case", cases("coordinator_finalize_vectors.json", "errorTestCases"))
def test_coordinator_finalize_errors(group: dict[str, Any], case: dict[str, Any]) -> None:
    """coordinator_finalize names a participant whose signature is bad."""
    pmsgs2 = [h(group["pmsg2Pool"][i]) for i in case["pmsg2Indices"]]
    error = raised(chilldkg.coordinator_finalize, coordinator_state(group), pmsgs2)
    check_error(case["expectedError"], error, case["comment"])


@pytest.mark.parametrize("group, case", cases("coordinator_investigate_vectors.json", "validTestCases"))
def test_coordinator_investigate(group: dict[str, Any], case: dict[str, Any]) -> None:
    """coordinator_investigate produces the published investigation messages."""
    cinvs = chilldkg.coordinator_investigate([h(m) for m in group["pmsgs1"]], params_of(group["params"]))
    assert [h(m) for m in case["expectedCinvMsgs"]] == cinvs


def recover(case: dict[str, Any]) -> Any:
    if case["hostseckey"] is None:
        return chilldkg.coordinator_recover(h(case["recoveryData"]))
    return chilldkg.participant_recover(h(case["hostseckey"]), h(case["recoveryData"]))


@pytest.mark.parametrize("group, case", cases("recover_vectors.json", "validTestCases"))
def test_recover_valid(group: dict[str, Any], case: dict[str, Any]) -> None:
    """Recovery from host secret key and recovery data gives the published output."""
    output, params = recover(case)
    check_output(case["expectedOutput"]["dkgOutput"], output)
    assert params_of(case["expectedOutput"]["params"]) == params


@pytest.mark.parametrize("group, case", cases("recover_vectors.json", "errorTestCases"))
def test_recover_errors(group: dict[str, Any], case: dict[str, Any]) -> None:
    """Recovery refuses malformed, uncertified or foreign recovery data."""
    with pytest.raises(DkgError) as info:
        recover(case)
    check_error(case["expectedError"], info.value, case["comment"])
