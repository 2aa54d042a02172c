"""Raw threshold-cryptography primitives: groups, Shamir shares, trusted dealers, vectors-only code.

Only modules inside `coffer.mpc` may import `coffer.mpc.hazmat`. Services, the web layer and the
CLI use the safe entry points (`coffer.mpc.frost`, the DKG and ECDSA packages) instead. Nothing
here enforces protocol rules such as single-use nonces; misuse of these functions can leak keys.
"""
