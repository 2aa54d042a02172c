"""ChillDKG written once over a `DkgSuite`: SimplPedPop, EncPedPop and CertEq.

This follows the ChillDKG draft (BlockstreamResearch/bip-frost-dkg, revision a918968): every
participant deals a Feldman VSS sharing with a proof of possession of its constant term
(SimplPedPop), encrypts each share to its recipient with an ephemeral-static ECDH pad
(EncPedPop), and signs the session transcript with its host key; the n signatures are the
success certificate (CertEq). The coordinator only relays and aggregates. With the secp256k1
suite the bytes are exactly the BIP's; with the Ed25519 suite the design is the same.

The participant with list index i (0-based, the BIP's "participant id") holds the Shamir share
with identifier i + 1. Errors name culprits by identifier.

Pure functions: no I/O, no clock, randomness only as arguments. States returned by a step must
be passed to the next step exactly once. Nothing here logs, and no error carries a secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from coffer.invariant import invariant
from coffer.mpc.dkg.errors import (
    DuplicateHostPubkeyError,
    FaultyCoordinatorError,
    FaultyParticipantError,
    FaultyParticipantOrCoordinatorError,
    HostSeckeyError,
    InvalidArgument,
    InvalidHostPubkeyError,
    InvalidRecoveryAckError,
    ProtocolError,
    RandomnessError,
    RecoveryDataError,
    SessionParamsError,
    ThresholdOrCountError,
    UnknownFaultyParticipantOrCoordinatorError,
)
from coffer.mpc.dkg.messages import (
    CoordinatorInvestigationMsg,
    CoordinatorMsg1,
    ParticipantMsg1,
    decode_elements,
    decode_scalars,
    encode_elements,
    encode_scalars,
    split,
)
from coffer.mpc.dkg.suite import SCALAR_LENGTH, SIGNATURE_LENGTH, DkgSuite
from coffer.mpc.dkg.types import KeyShareOutput, SecretShare
from coffer.mpc.dkg.vss import commit, commitment_eval, polynomial_eval
from coffer.mpc.errors import MalformedInput
from coffer.mpc.hazmat.group import Element

__all__ = [
    "SessionParams",
    "ParticipantState1",
    "ParticipantState2",
    "CoordinatorState",
    "ParticipantInvestigationData",
    "PARTICIPANTS_MAX",
    "params_validate",
    "params_hash",
    "hostpubkey_gen",
    "participant_step1",
    "participant_step2",
    "participant_finalize",
    "participant_investigate",
    "coordinator_step1",
    "coordinator_finalize",
    "coordinator_investigate",
    "participant_recover",
    "coordinator_recover",
    "participant_recovery_ack_sign",
    "participant_recovery_acks_verify",
    "encrypt_pads",
    "certeq_message",
    "participant_state1_serialize",
    "participant_state1_parse",
    "participant_state2_serialize",
    "participant_state2_parse",
    "coordinator_state_serialize",
    "coordinator_state_parse",
]

PARTICIPANTS_MAX = 2**32 - 1


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


# ---------------------------------------------------------------------------------------------
# Session parameters


@dataclass(frozen=True, slots=True)
class SessionParams:
    """The common input: the ordered host public keys of all participants and the threshold."""

    hostpubkeys: tuple[bytes, ...]
    t: int

    @property
    def n(self) -> int:
        return len(self.hostpubkeys)


def params_validate(suite: DkgSuite, params: SessionParams) -> None:
    """Raise a SessionParamsError unless 1 <= t <= n, every key parses and none repeats."""
    if not 1 <= params.t <= params.n <= PARTICIPANTS_MAX:
        raise ThresholdOrCountError("1 <= t <= n <= 2**32 - 1 does not hold")
    for index, hostpubkey in enumerate(params.hostpubkeys):
        try:
            suite.decode_point(hostpubkey)
        except MalformedInput:
            raise InvalidHostPubkeyError(culprit=index + 1) from None
    seen: dict[bytes, int] = {}
    for index, hostpubkey in enumerate(params.hostpubkeys):
        if hostpubkey in seen:
            raise DuplicateHostPubkeyError(seen[hostpubkey] + 1, index + 1)
        seen[hostpubkey] = index


def params_hash(suite: DkgSuite, params: SessionParams) -> bytes:
    """A 32-byte hash of the session parameters, to compare out of band."""
    params_validate(suite, params)
    return suite.tagged_hash("params_hash", _u32(params.t) + b"".join(params.hostpubkeys))


def hostpubkey_gen(suite: DkgSuite, hostseckey: bytes) -> bytes:
    """The host public key (the participant's long-term identity) for a 32-byte secret key."""
    return suite.pubkey_gen(bytes(hostseckey))


# ---------------------------------------------------------------------------------------------
# States


@dataclass(frozen=True, slots=True)
class ParticipantState1:
    """What a participant keeps between step 1 and step 2. Holds no secret."""

    params: SessionParams
    participant_index: int
    com_to_secret: Element
    pubnonce: bytes


@dataclass(frozen=True, slots=True)
class ParticipantState2:
    """What a participant keeps between step 2 and finalize (the output holds its share)."""

    params: SessionParams
    eq_input: bytes
    output: KeyShareOutput


@dataclass(frozen=True, slots=True)
class CoordinatorState:
    params: SessionParams
    eq_input: bytes
    output: KeyShareOutput


@dataclass(frozen=True, slots=True)
class ParticipantInvestigationData:
    """Secret material needed by `participant_investigate`; repr redacted."""

    n: int
    participant_index: int
    secshare: int = field(repr=False)
    pubshare: Element
    enc_secshare: int = field(repr=False)
    pads: tuple[int, ...] = field(repr=False)

    def __repr__(self) -> str:
        return f"ParticipantInvestigationData(participant_index={self.participant_index}, <redacted>)"


# ---------------------------------------------------------------------------------------------
# EncPedPop: pads from ephemeral-static ECDH


def _enc_context(params: SessionParams) -> bytes:
    return _u32(params.t) + b"".join(params.hostpubkeys)


def _self_pad(suite: DkgSuite, symkey: bytes, pubnonce: bytes, context: bytes) -> int:
    # Encrypting to ourselves needs no ECDH: the host secret key serves as a symmetric key.
    return suite.scalar_from_hash_wrapping("encaps_multi self_pad", symkey + pubnonce + context)


def _ecdh_pad(suite: DkgSuite, secret: int, sender_public: bytes, recipient_public: bytes,
              their_public: bytes, context: bytes) -> int:
    shared = suite.ecdh(secret, their_public)
    return suite.scalar_from_hash_wrapping(
        "encpedpop ecdh", shared + sender_public + recipient_public + context)


def encrypt_pads(suite: DkgSuite, secnonce: int, pubnonce: bytes, hostseckey: bytes,
                 enckeys: Sequence[bytes], enc_context: bytes, sender_index: int) -> list[int]:
    """The pad a sender adds to the share for each recipient (multi-recipient hashed ElGamal)."""
    pads = []
    for recipient, enckey in enumerate(enckeys):
        context = _u32(recipient) + enc_context
        if recipient == sender_index:
            pads.append(_self_pad(suite, hostseckey, pubnonce, context))
        else:
            pads.append(_ecdh_pad(suite, secnonce, pubnonce, enckey, enckey, context))
    return pads


def _decrypt_pads(suite: DkgSuite, hostseckey: bytes, enckey: bytes, pubnonces: Sequence[bytes],
                  enc_context: bytes, recipient_index: int) -> list[int]:
    deckey = suite.host_secret_scalar(hostseckey)
    context = _u32(recipient_index) + enc_context
    pads = []
    for sender, pubnonce in enumerate(pubnonces):
        if sender == recipient_index:
            pads.append(_self_pad(suite, hostseckey, pubnonce, context))
            continue
        try:
            pads.append(_ecdh_pad(suite, deckey, pubnonce, enckey, pubnonce, context))
        except MalformedInput:
            raise FaultyParticipantOrCoordinatorError("invalid public nonce", culprit=sender + 1) from None
    return pads


# ---------------------------------------------------------------------------------------------
# CertEq


def _padded_label(suite: DkgSuite, label: str) -> bytes:
    prefix = (suite.tag_prefix + label).encode()
    invariant(len(prefix) <= suite.certeq_prefix_length, "CertEq label too long")
    return prefix + bytes(suite.certeq_prefix_length - len(prefix))


def certeq_message(suite: DkgSuite, eq_input: bytes, participant_index: int) -> bytes:
    return _padded_label(suite, "certeq message") + _u32(participant_index) + eq_input


def _certeq_invalid_signer(suite: DkgSuite, hostpubkeys: Sequence[bytes], eq_input: bytes,
                           cert: bytes) -> int | None:
    """The index of the first signature in `cert` that does not verify, or None."""
    for index, hostpubkey in enumerate(hostpubkeys):
        signature = cert[index * SIGNATURE_LENGTH:(index + 1) * SIGNATURE_LENGTH]
        message = certeq_message(suite, eq_input, index)
        if not suite.verify(message, suite.decode_point(hostpubkey), signature,
                            suite.host_signature_tag):
            return index
    return None


# ---------------------------------------------------------------------------------------------
# Shared computations


def _output(suite: DkgSuite, params: SessionParams, sum_coms_tweaked: Sequence[Element],
            secret: SecretShare | None) -> KeyShareOutput:
    public_shares = {index + 1: suite.encode(commitment_eval(suite, sum_coms_tweaked, index + 1))
                     for index in range(params.n)}
    return KeyShareOutput(suite.name, params.t, suite.encode(sum_coms_tweaked[0]), public_shares, secret)


def _tweaked(suite: DkgSuite, sum_coms: Sequence[Element]) -> tuple[tuple[Element, ...], int]:
    if suite.is_identity(sum_coms[0]):
        raise ProtocolError("the threshold public key is the identity")
    tweak = suite.vss_tweak(sum_coms[0])
    return (suite.add(sum_coms[0], suite.base_mul(tweak)), *sum_coms[1:]), tweak


def _eq_input(suite: DkgSuite, params: SessionParams, sum_coms: Sequence[Element],
              pubnonces: Sequence[bytes], enc_secshares: Sequence[int]) -> bytes:
    return (_u32(params.t) + encode_elements(suite, sum_coms) + b"".join(params.hostpubkeys)
            + b"".join(pubnonces) + encode_scalars(suite, enc_secshares))


def _index_of(params: SessionParams, hostpubkey: bytes, message: str) -> int:
    try:
        return params.hostpubkeys.index(hostpubkey)
    except ValueError:
        raise HostSeckeyError(message) from None


def _check_random(value: bytes, what: str) -> None:
    if len(value) != 32:
        raise InvalidArgument(f"{what} must be 32 bytes")


# ---------------------------------------------------------------------------------------------
# Participant


def participant_step1(suite: DkgSuite, hostseckey: bytes, params: SessionParams,
                      random: bytes) -> tuple[ParticipantState1, bytes]:
    """Deal: commit to a random polynomial, prove possession, encrypt one share per participant.

    `random` must be 32 FRESH random bytes. Returns the state for step 2 and the message for
    the coordinator (`ParticipantMsg1`).
    """
    hostseckey = bytes(hostseckey)
    hostpubkey = suite.pubkey_gen(hostseckey)
    params_validate(suite, params)
    index = _index_of(params, hostpubkey, "Host secret key does not match any host public key")
    _check_random(random, "random")
    if bytes(random) == bytes(32):
        raise RandomnessError("randomness is all zeroes")
    t, n = params.t, params.n
    enc_context = _enc_context(params)
    # Everything below derives from simpl_seed, so reused randomness in a different session
    # (other keys or threshold) can never reuse pads with different shares.
    simpl_seed = suite.tagged_hash("encpedpop seed", hostseckey + bytes(random) + enc_context)
    simpl_aux = suite.tagged_hash("simplpedpop aux", simpl_seed)
    secnonce = suite.scalar_from_hash_checked("encpedpop secnonce", simpl_seed)
    invariant(secnonce != 0, "zero encryption nonce")
    pubnonce = suite.encode(suite.base_mul(secnonce))
    coefficients = [suite.scalar_from_hash_checked("vss coeffs", simpl_seed + _u32(j)) for j in range(t)]
    invariant(coefficients[0] != 0, "zero secret coefficient")
    shares = [polynomial_eval(coefficients, recipient + 1, suite.order) for recipient in range(n)]
    pop = suite.sign(_u32(index), coefficients[0], simpl_aux, suite.tag_prefix + "pop message")
    commitment = commit(suite, coefficients)
    pads = encrypt_pads(suite, secnonce, pubnonce, hostseckey, params.hostpubkeys, enc_context, index)
    enc_shares = tuple((share + pad) % suite.order for share, pad in zip(shares, pads, strict=True))
    message = ParticipantMsg1(commitment, pop, pubnonce, enc_shares).serialize(suite)
    return ParticipantState1(params, index, commitment[0], pubnonce), message


def _check_commitments(suite: DkgSuite, state1: ParticipantState1, cmsg: CoordinatorMsg1) -> None:
    index = state1.participant_index
    if cmsg.coms_to_secrets[index] != state1.com_to_secret:
        raise FaultyCoordinatorError(
            "Coordinator sent unexpected first group element for local participant id")
    for other, com_to_secret in enumerate(cmsg.coms_to_secrets):
        if other == index:
            continue
        if suite.is_identity(com_to_secret):
            raise FaultyParticipantOrCoordinatorError("Participant sent invalid commitment",
                                                      culprit=other + 1)
        if not suite.verify(_u32(other), com_to_secret, cmsg.pops[other], suite.tag_prefix + "pop message"):
            raise FaultyParticipantOrCoordinatorError("Participant sent invalid proof-of-knowledge",
                                                      culprit=other + 1)


def participant_step2(suite: DkgSuite, hostseckey: bytes, state1: ParticipantState1, cmsg1: bytes,
                      aux_rand: bytes) -> tuple[ParticipantState2, bytes]:
    """Decrypt and check the share, compute the outputs, sign the transcript (CertEq).

    Raises FaultyCoordinatorError, FaultyParticipantOrCoordinatorError (naming a culprit) or
    UnknownFaultyParticipantOrCoordinatorError (then ask the coordinator for an investigation
    message and call `participant_investigate`). After sending the returned signature the
    host secret key must be kept: another participant may already use the key.

    Single use: a participant signs at most one transcript per session. A service must record
    durably that it ran step 2 for this `state1` before the signature leaves, and refuse any
    second `cmsg1` for the same session (CertEq's agreement rests on it).
    """
    hostseckey = bytes(hostseckey)
    hostpubkey = suite.pubkey_gen(hostseckey)
    _check_random(aux_rand, "aux_rand")
    params, index = state1.params, state1.participant_index
    if hostpubkey != params.hostpubkeys[index]:
        raise HostSeckeyError("Host secret key does not match the one used in participant_step1")
    try:
        cmsg = CoordinatorMsg1.parse(suite, cmsg1, t=params.t, n=params.n)
    except MalformedInput as error:
        raise FaultyCoordinatorError(f"malformed coordinator message 1: {error}") from None
    if cmsg.pubnonces[index] != state1.pubnonce:
        raise FaultyCoordinatorError("Coordinator replied with wrong pubnonce")
    pads = _decrypt_pads(suite, hostseckey, params.hostpubkeys[index], cmsg.pubnonces,
                         _enc_context(params), index)
    enc_secshare = cmsg.enc_secshares[index]
    secshare = (enc_secshare - sum(pads)) % suite.order
    _check_commitments(suite, state1, cmsg)
    sum_coms = (suite.sum(list(cmsg.coms_to_secrets)), *cmsg.sum_coms_to_nonconst_terms)
    sum_coms_tweaked, tweak = _tweaked(suite, sum_coms)
    pubshare_tweaked = commitment_eval(suite, sum_coms_tweaked, index + 1)
    secshare_tweaked = (secshare + tweak) % suite.order
    if suite.base_mul(secshare_tweaked) != pubshare_tweaked:
        investigation = ParticipantInvestigationData(
            params.n, index, secshare, suite.sub(pubshare_tweaked, suite.base_mul(tweak)),
            enc_secshare, tuple(pads))
        raise UnknownFaultyParticipantOrCoordinatorError(
            "Received invalid secshare; consider using participant_investigate() to determine "
            "a faulty party", investigation=investigation)
    output = _output(suite, params, sum_coms_tweaked, SecretShare(index + 1, secshare_tweaked))
    eq_input = _eq_input(suite, params, sum_coms, cmsg.pubnonces, cmsg.enc_secshares)
    signature = suite.sign(certeq_message(suite, eq_input, index), suite.host_secret_scalar(hostseckey),
                           bytes(aux_rand), suite.host_signature_tag)
    return ParticipantState2(params, eq_input, output), signature


def participant_finalize(suite: DkgSuite, state2: ParticipantState2,
                         cmsg2: bytes) -> tuple[KeyShareOutput, bytes]:
    """Check the success certificate; return the output and the recovery data.

    Even when this raises, the host secret key must be kept: another participant may hold a
    valid certificate and present the recovery data later (`participant_recover`).
    """
    params = state2.params
    if len(cmsg2) != SIGNATURE_LENGTH * params.n:
        raise FaultyCoordinatorError("certificate has the wrong length")
    if _certeq_invalid_signer(suite, params.hostpubkeys, state2.eq_input, bytes(cmsg2)) is not None:
        raise FaultyCoordinatorError("Coordinator has provided a certificate with an invalid signature")
    return state2.output, state2.eq_input + bytes(cmsg2)


def participant_investigate(suite: DkgSuite, error: UnknownFaultyParticipantOrCoordinatorError,
                            cinv: bytes) -> NoReturn:
    """Name who sent a bad share, from the coordinator's investigation message. Always raises."""
    data = error.investigation
    try:
        message = CoordinatorInvestigationMsg.parse(suite, cinv, n=data.n)
    except MalformedInput as parse_error:
        raise FaultyCoordinatorError(f"malformed investigation message: {parse_error}") from None
    partial_secshares = [(enc - pad) % suite.order
                         for enc, pad in zip(message.enc_partial_secshares, data.pads, strict=True)]
    if suite.sum(list(message.partial_pubshares)) != data.pubshare:
        raise FaultyCoordinatorError("Sum of partial pubshares not equal to pubshare")
    if sum(partial_secshares) % suite.order != data.secshare:
        # Encryption is additively homomorphic: the coordinator's sums do not match.
        raise FaultyCoordinatorError("Sum of encrypted partial secshares not equal to encrypted secshare")
    for sender, (secshare, pubshare) in enumerate(zip(partial_secshares, message.partial_pubshares,
                                                      strict=True)):
        if suite.base_mul(secshare) == pubshare:
            continue
        if sender == data.participant_index:
            raise FaultyCoordinatorError("Coordinator fiddled with the share from me to myself")
        raise FaultyParticipantOrCoordinatorError("Participant sent invalid partial secshare",
                                                  culprit=sender + 1)
    raise InvalidArgument("participant_investigate() was called, but all inputs are consistent")


# ---------------------------------------------------------------------------------------------
# Coordinator


def _parse_pmsgs1(suite: DkgSuite, pmsgs1: Sequence[bytes], params: SessionParams) -> list[ParticipantMsg1]:
    if len(pmsgs1) != params.n:
        raise InvalidArgument("need exactly one message 1 per participant")
    parsed = []
    for index, pmsg1 in enumerate(pmsgs1):
        try:
            parsed.append(ParticipantMsg1.parse(suite, pmsg1, t=params.t, n=params.n))
        except MalformedInput as error:
            raise FaultyParticipantError(f"malformed message 1: {error}", culprit=index + 1) from None
    return parsed


def _coordinator_checks(suite: DkgSuite, parsed: Sequence[ParticipantMsg1]) -> None:
    # Beyond the BIP: the coordinator refuses what every participant would refuse, so the
    # culprit is named by a party that saw the message itself.
    for index, message in enumerate(parsed):
        culprit = index + 1
        try:
            suite.decode_point(message.pubnonce)
        except MalformedInput:
            raise FaultyParticipantError("invalid public nonce", culprit=culprit) from None
        if suite.is_identity(message.commitment[0]):
            raise FaultyParticipantError("invalid commitment to the secret", culprit=culprit)
        if not suite.verify(_u32(index), message.commitment[0], message.pop,
                            suite.tag_prefix + "pop message"):
            raise FaultyParticipantError("invalid proof of possession", culprit=culprit)


def coordinator_step1(suite: DkgSuite, pmsgs1: Sequence[bytes],
                      params: SessionParams) -> tuple[CoordinatorState, bytes]:
    """Aggregate the participants' first messages into the broadcast `CoordinatorMsg1`."""
    params_validate(suite, params)
    parsed = _parse_pmsgs1(suite, pmsgs1, params)
    _coordinator_checks(suite, parsed)
    t, n = params.t, params.n
    coms_to_secrets = tuple(message.commitment[0] for message in parsed)
    nonconst = tuple(suite.sum([message.commitment[j] for message in parsed]) for j in range(1, t))
    pubnonces = tuple(message.pubnonce for message in parsed)
    enc_secshares = tuple(sum(message.enc_shares[recipient] for message in parsed) % suite.order
                          for recipient in range(n))
    sum_coms = (suite.sum(list(coms_to_secrets)), *nonconst)
    sum_coms_tweaked, _ = _tweaked(suite, sum_coms)
    output = _output(suite, params, sum_coms_tweaked, None)
    eq_input = _eq_input(suite, params, sum_coms, pubnonces, enc_secshares)
    cmsg1 = CoordinatorMsg1(coms_to_secrets, nonconst, tuple(message.pop for message in parsed),
                            pubnonces, enc_secshares).serialize(suite)
    return CoordinatorState(params, eq_input, output), cmsg1


def coordinator_finalize(suite: DkgSuite, state: CoordinatorState,
                         pmsgs2: Sequence[bytes]) -> tuple[bytes, KeyShareOutput, bytes]:
    """Collect the CertEq signatures: returns (certificate message, output, recovery data)."""
    params = state.params
    if len(pmsgs2) != params.n:
        raise InvalidArgument("need exactly one message 2 per participant")
    for index, pmsg2 in enumerate(pmsgs2):
        if len(pmsg2) != SIGNATURE_LENGTH:
            raise FaultyParticipantError("malformed message 2", culprit=index + 1)
    cert = b"".join(bytes(pmsg2) for pmsg2 in pmsgs2)
    invalid = _certeq_invalid_signer(suite, params.hostpubkeys, state.eq_input, cert)
    if invalid is not None:
        raise FaultyParticipantError("Participant has provided an invalid signature for the certificate",
                                     culprit=invalid + 1)
    return cert, state.output, state.eq_input + cert


def coordinator_investigate(suite: DkgSuite, pmsgs1: Sequence[bytes], params: SessionParams) -> list[bytes]:
    """One investigation message per participant (public; may be broadcast to all)."""
    parsed = _parse_pmsgs1(suite, pmsgs1, params)
    messages = []
    for recipient in range(params.n):
        enc_partial = tuple(message.enc_shares[recipient] for message in parsed)
        partial_pubshares = tuple(commitment_eval(suite, message.commitment, recipient + 1)
                                  for message in parsed)
        messages.append(CoordinatorInvestigationMsg(enc_partial, partial_pubshares).serialize(suite))
    return messages


# ---------------------------------------------------------------------------------------------
# Recovery


@dataclass(frozen=True, slots=True)
class _RecoveryData:
    params: SessionParams
    sum_coms: tuple[Element, ...]
    pubnonces: tuple[bytes, ...]
    enc_secshares: tuple[int, ...]
    eq_input: bytes
    cert: bytes


def _deserialize_recovery_data(suite: DkgSuite, data: bytes, *, with_cert: bool = True) -> _RecoveryData:
    """Parse recovery data (eq_input || cert), or a bare eq_input when `with_cert` is false."""
    size = suite.element_length
    if len(data) < 4:
        raise InvalidArgument("recovery data too short")
    t = int.from_bytes(data[:4], "big")
    rest = data[4:]
    if len(rest) < size * t:
        raise InvalidArgument("recovery data too short")
    sum_coms = decode_elements(suite, rest[:size * t], t)
    rest = rest[size * t:]
    n, remainder = divmod(len(rest), 2 * size + SCALAR_LENGTH + (SIGNATURE_LENGTH if with_cert else 0))
    if remainder != 0:
        raise InvalidArgument("recovery data has a partial participant entry")
    hostpubkeys = tuple(split(rest, size, n))
    rest = rest[size * n:]
    pubnonces = tuple(split(rest, size, n))
    rest = rest[size * n:]
    enc_secshares = decode_scalars(suite, rest[:SCALAR_LENGTH * n], n)
    cert = rest[SCALAR_LENGTH * n:]
    return _RecoveryData(SessionParams(hostpubkeys, t), sum_coms, pubnonces, enc_secshares,
                         data[:len(data) - len(cert)], cert)


def _load_recovery_data(suite: DkgSuite, recovery_data: bytes) -> _RecoveryData:
    try:
        data = _deserialize_recovery_data(suite, bytes(recovery_data))
    except MalformedInput:
        raise RecoveryDataError("Failed to deserialize recovery data") from None
    try:
        params_validate(suite, data.params)
    except SessionParamsError:
        raise RecoveryDataError("Invalid session parameters in recovery data") from None
    if _certeq_invalid_signer(suite, data.params.hostpubkeys, data.eq_input, data.cert) is not None:
        raise RecoveryDataError("Invalid certificate in recovery data")
    return data


def _outputs_from(suite: DkgSuite, data: _RecoveryData, hostseckey: bytes | None) -> KeyShareOutput:
    """The output a transcript implies; with a host key, its decrypted and checked share."""
    params = data.params
    try:
        sum_coms_tweaked, tweak = _tweaked(suite, data.sum_coms)
    except ProtocolError:
        raise RecoveryDataError("threshold public key in recovery data is the identity") from None
    if hostseckey is None:
        return _output(suite, params, sum_coms_tweaked, None)
    hostpubkey = suite.pubkey_gen(bytes(hostseckey))
    index = _index_of(params, hostpubkey,
                      "Host secret key does not match any host public key in the recovery data")
    pads = _decrypt_pads(suite, bytes(hostseckey), hostpubkey, data.pubnonces, _enc_context(params), index)
    secshare = (data.enc_secshares[index] - sum(pads) + tweak) % suite.order
    output = _output(suite, params, sum_coms_tweaked, SecretShare(index + 1, secshare))
    if suite.encode(suite.base_mul(secshare)) != output.public_shares[index + 1]:
        raise RecoveryDataError("the transcript does not give this participant a valid share")
    return output


def _recover(suite: DkgSuite, hostseckey: bytes | None,
             recovery_data: bytes) -> tuple[KeyShareOutput, SessionParams]:
    data = _load_recovery_data(suite, recovery_data)
    # With a certificate that carries our own signature, a bad share cannot happen: we checked
    # it before signing. Without one (a stored state) it means corrupted storage.
    return _outputs_from(suite, data, hostseckey), data.params


def participant_recover(suite: DkgSuite, hostseckey: bytes,
                        recovery_data: bytes) -> tuple[KeyShareOutput, SessionParams]:
    """Rebuild a participant's output from its host secret key and the recovery data."""
    return _recover(suite, hostseckey, recovery_data)


def coordinator_recover(suite: DkgSuite, recovery_data: bytes) -> tuple[KeyShareOutput, SessionParams]:
    """Rebuild the public output (no secret share) from the recovery data."""
    return _recover(suite, None, recovery_data)


def _recovery_ack_message(suite: DkgSuite, recovery_data: bytes, index: int) -> bytes:
    return _padded_label(suite, "recovery acknowledgment") + _u32(index) + recovery_data


def _check_recovery_matches(suite: DkgSuite, recovery_data: bytes, params: SessionParams) -> None:
    try:
        data = _deserialize_recovery_data(suite, bytes(recovery_data))
    except MalformedInput:
        raise RecoveryDataError("Failed to deserialize recovery data") from None
    if data.params != params:
        raise RecoveryDataError("Recovery data does not match the provided session parameters")


def participant_recovery_ack_sign(suite: DkgSuite, hostseckey: bytes, recovery_data: bytes,
                                  params: SessionParams, aux_rand: bytes) -> bytes:
    """Sign that this participant holds the recovery data (before anyone uses the key)."""
    hostpubkey = suite.pubkey_gen(bytes(hostseckey))
    params_validate(suite, params)
    index = _index_of(params, hostpubkey, "Host secret key does not match any host public key")
    _check_random(aux_rand, "aux_rand")
    _check_recovery_matches(suite, recovery_data, params)
    return suite.sign(_recovery_ack_message(suite, bytes(recovery_data), index),
                      suite.host_secret_scalar(bytes(hostseckey)), bytes(aux_rand),
                      suite.host_signature_tag)


def participant_recovery_acks_verify(suite: DkgSuite, recovery_data: bytes, params: SessionParams,
                                     acks: Sequence[bytes]) -> None:
    """Raise InvalidRecoveryAckError (naming the signer) unless every acknowledgment verifies."""
    params_validate(suite, params)
    if len(acks) != params.n:
        raise InvalidArgument("need exactly one acknowledgment per participant")
    _check_recovery_matches(suite, recovery_data, params)
    for index, (hostpubkey, ack) in enumerate(zip(params.hostpubkeys, acks, strict=True)):
        message = _recovery_ack_message(suite, bytes(recovery_data), index)
        if not suite.verify(message, suite.decode_point(hostpubkey), bytes(ack), suite.host_signature_tag):
            raise InvalidRecoveryAckError(culprit=index + 1)


# ---------------------------------------------------------------------------------------------
# Persisting states between rounds (public bytes only: a co-signer may store them anywhere)


def participant_state1_serialize(suite: DkgSuite, state1: ParticipantState1) -> bytes:
    """t (4) | n (4) | host public keys | participant index (4) | com_to_secret | pubnonce."""
    params = state1.params
    return (_u32(params.t) + _u32(params.n) + b"".join(params.hostpubkeys) + _u32(state1.participant_index)
            + suite.encode(state1.com_to_secret) + state1.pubnonce)


def participant_state1_parse(suite: DkgSuite, data: bytes) -> ParticipantState1:
    """Strict inverse of `participant_state1_serialize` (raises InvalidArgument)."""
    data = bytes(data)
    size = suite.element_length
    if len(data) < 8:
        raise InvalidArgument("state too short")
    t, n = int.from_bytes(data[:4], "big"), int.from_bytes(data[4:8], "big")
    if len(data) != 8 + size * n + 4 + 2 * size:
        raise InvalidArgument("state has the wrong length")
    params = SessionParams(tuple(split(data[8:], size, n)), t)
    try:
        params_validate(suite, params)
    except SessionParamsError as error:
        raise InvalidArgument(f"state carries invalid parameters: {error}") from None
    rest = data[8 + size * n:]
    index = int.from_bytes(rest[:4], "big")
    if index >= n:
        raise InvalidArgument("state carries an out-of-range participant index")
    try:
        com_to_secret = suite.decode_point(rest[4:4 + size])
        suite.decode_point(rest[4 + size:])
    except MalformedInput as error:
        raise InvalidArgument(f"state carries an invalid element: {error}") from None
    return ParticipantState1(params, index, com_to_secret, rest[4 + size:])


def participant_state2_serialize(state2: ParticipantState2) -> bytes:
    """The transcript only: the share is re-derived from it and the host key when parsed."""
    return state2.eq_input


def _stored_transcript(suite: DkgSuite, data: bytes) -> _RecoveryData:
    """A transcript this party stored itself, parsed and validated again."""
    try:
        parsed = _deserialize_recovery_data(suite, bytes(data), with_cert=False)
        params_validate(suite, parsed.params)
    except (MalformedInput, SessionParamsError) as error:
        raise InvalidArgument(f"stored transcript is invalid: {error}") from None
    return parsed


def participant_state2_parse(suite: DkgSuite, hostseckey: bytes, data: bytes) -> ParticipantState2:
    """Rebuild the state after step 2 from the stored transcript and the host secret key."""
    parsed = _stored_transcript(suite, data)
    return ParticipantState2(parsed.params, parsed.eq_input, _outputs_from(suite, parsed, hostseckey))


def coordinator_state_serialize(state: CoordinatorState) -> bytes:
    return state.eq_input


def coordinator_state_parse(suite: DkgSuite, data: bytes) -> CoordinatorState:
    """Rebuild the coordinator's state from its stored transcript."""
    parsed = _stored_transcript(suite, data)
    return CoordinatorState(parsed.params, parsed.eq_input, _outputs_from(suite, parsed, None))
