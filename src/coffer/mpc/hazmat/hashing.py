"""Hash building block: RFC 9380 expand_message_xmd (BIP-340 tagged hashes are `coffer.btc.hashes`).

Pure functions over bytes; no secret is ever logged. Used by the FROST ciphersuites only.
"""

from __future__ import annotations

import hashlib

__all__ = ["expand_message_xmd"]


EXPAND_DST_BYTES_MAX = 255
EXPAND_BLOCKS_MAX = 255


def expand_message_xmd(message: bytes, dst: bytes, length: int, hash_name: str) -> bytes:
    """RFC 9380 §5.3.1 expand_message_xmd over `hash_name` (e.g. "sha256")."""
    hasher = hashlib.new(hash_name)
    b_in_bytes = hasher.digest_size
    s_in_bytes = hasher.block_size
    blocks = -(-length // b_in_bytes)
    if blocks > EXPAND_BLOCKS_MAX or length > 65535 or len(dst) > EXPAND_DST_BYTES_MAX:
        raise ValueError("expand_message_xmd: requested length or DST too long")
    dst_prime = dst + bytes([len(dst)])
    z_pad = bytes(s_in_bytes)
    l_i_b_str = length.to_bytes(2, "big")
    msg_prime = z_pad + message + l_i_b_str + b"\x00" + dst_prime
    b_0 = hashlib.new(hash_name, msg_prime).digest()
    b_i = hashlib.new(hash_name, b_0 + b"\x01" + dst_prime).digest()
    uniform = bytearray(b_i)
    for index in range(2, blocks + 1):
        mixed = bytes(x ^ y for x, y in zip(b_0, b_i, strict=True))
        b_i = hashlib.new(hash_name, mixed + bytes([index]) + dst_prime).digest()
        uniform += b_i
    return bytes(uniform[:length])
