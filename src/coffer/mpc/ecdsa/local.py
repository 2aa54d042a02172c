"""Runs DKLs23 between in-process parties: for tests, benches and demos (no network).

A real deployment moves the same bytes between co-signer services; this driver only routes
them, so it exercises exactly the public message API.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence

from coffer.mpc.ecdsa.curve import Rng, system_rng
from coffer.mpc.ecdsa.setup import PeerSetup, SetupSession
from coffer.mpc.ecdsa.sign import KeyShare, Signature, SigningSession

__all__ = ["pair", "pair_all", "sign_locally", "Tamper"]

SETUP_MESSAGES = 5

Tamper = Callable[[int, int, int, bytes], bytes]
"""(round, sender, receiver, message) -> message as delivered; lets tests play a cheater."""


def pair(first: int, second: int, key_id: bytes, rng: Rng = system_rng,
         nonce: bytes | None = None) -> tuple[PeerSetup, PeerSetup]:
    """Runs the pairing protocol between two parties; returns (first's setup, second's)."""
    nonce = nonce if nonce is not None else secrets.token_bytes(32)
    left = SetupSession(me=first, peer=second, key_id=key_id, nonce=nonce, rng=rng)
    right = SetupSession(me=second, peer=first, key_id=key_id, nonce=nonce, rng=rng)
    to_right = left.start()
    to_left = right.start()
    for _ in range(SETUP_MESSAGES):
        reply_left, reply_right = right.receive(to_right), left.receive(to_left)
        if reply_left is None or reply_right is None:
            break
        to_left, to_right = reply_left, reply_right
    return left.result(), right.result()


def pair_all(identifiers: Sequence[int], key_id: bytes,
             rng: Rng = system_rng) -> dict[int, dict[int, PeerSetup]]:
    """Setups for every pair: result[me][peer]."""
    setups: dict[int, dict[int, PeerSetup]] = {i: {} for i in identifiers}
    for index, first in enumerate(identifiers):
        for second in identifiers[index + 1:]:
            setups[first][second], setups[second][first] = pair(first, second, key_id, rng)
    return setups


def _deliver(round_number: int, outgoing: Mapping[int, Mapping[int, bytes]], me: int,
             tamper: Tamper | None) -> dict[int, bytes]:
    inbox = {}
    for sender, messages in outgoing.items():
        if sender == me:
            continue
        message = messages[me]
        inbox[sender] = tamper(round_number, sender, me, message) if tamper else message
    return inbox


def sign_locally(shares: Mapping[int, KeyShare], setups: Mapping[int, Mapping[int, PeerSetup]],
                 digest: bytes, *, tweak: int = 0, rng: Rng = system_rng,
                 tamper: Tamper | None = None,
                 nonce: bytes | None = None) -> dict[int, Signature]:
    """Every signer in `shares` signs `digest` together; returns each signer's signature."""
    nonce = nonce if nonce is not None else secrets.token_bytes(32)
    signers = sorted(shares)
    sessions = {i: SigningSession(key=shares[i], signers=signers, digest=digest, nonce=nonce,
                                  setups=setups[i], tweak=tweak, rng=rng) for i in signers}
    first = {i: sessions[i].round1() for i in signers}
    second = {i: sessions[i].round2(_deliver(1, first, i, tamper)) for i in signers}
    third = {i: sessions[i].round3(_deliver(2, second, i, tamper)) for i in signers}
    broadcast = {i: {j: third[i] for j in signers} for i in signers}
    return {i: sessions[i].finalize(_deliver(3, broadcast, i, tamper)) for i in signers}
