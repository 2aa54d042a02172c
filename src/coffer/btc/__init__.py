"""Bitcoin helpers, written once: hashes, strict byte reading, scripts and addresses, descriptors,
BIP-340 Schnorr with a tag prefix, Taproot tweaks and BIP-322.

Pure functions over bytes, built on embit and coincurve where they already do the job. This
package imports only the standard library, embit, coincurve, `coffer.errors` and
`coffer.invariant`: the public verifier (`coffer.por.verify`) imports `hashes`, `reader`,
`script` and `bip322` from here, so nothing here may pull in a service, a database or a key
store. Key-holding code (signers, co-signers) uses `bip322_sign` for its proofs of control; the
verifier never imports it. Nothing here logs, and no error carries a secret.
"""
