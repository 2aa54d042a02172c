"""Liabilities tree: proofs verify, any change fails, strict formats, BitMEX file round trip."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coffer.por.errors import DuplicateAccount, LiabilityOutOfRange, MissingNonce, NotInTree, TooManyParts
from coffer.por.liabilities import Liability, build_liabilities_tree
from coffer.por.verify import (
    U64_MAX,
    InclusionProof,
    ProofLeaf,
    ProofSibling,
    PublishedRoot,
    VerificationFailed,
    check_liabilities_tree,
    parse_inclusion_proof,
    parse_liabilities_file,
    scan_liabilities_file,
    serialize_inclusion_proof,
    verify_inclusion,
)


def _nonces(accounts: list[int], seed: int = 1) -> dict[int, bytes]:
    generator = random.Random(seed)
    return {account: generator.randbytes(32) for account in accounts}


def _tree(balances: dict[int, int], *, parts: int = 2, seed: int = 3):  # type: ignore[no-untyped-def]
    nonces = _nonces(sorted(balances))
    tree = build_liabilities_tree("BTC", 800_000, sorted(balances.items()), nonces, parts=parts,
                                  rng=random.Random(seed).randbytes)
    return tree, nonces


def test_every_client_verifies_own_balance() -> None:
    """Each client's proof folds to the published root and shows exactly their balance."""
    balances = {account: account * 1_000 + 7 for account in range(1, 30)} | {99: 0}
    tree, nonces = _tree(balances)
    assert sum(balances.values()) == tree.total
    for account, balance in balances.items():
        proof = parse_inclusion_proof(serialize_inclusion_proof(tree.proof_for(account)))
        result = verify_inclusion(proof, nonces[account], tree.published_root(), expected_balance=balance)
        assert balance == result.balance


def test_leaf_count_is_padded_power_of_two() -> None:
    """The leaf level is a power of two at least parts times the client count."""
    tree, _ = _tree({account: 5 for account in range(1, 10)}, parts=3)
    assert 32 == tree.leaf_count


def _tampered(proof: InclusionProof, kind: str) -> InclusionProof:
    leaves, siblings = list(proof.leaves), list(proof.siblings)
    if kind == "leaf value":
        leaves[0] = ProofLeaf(leaves[0].index, leaves[0].value + 1)
    elif kind == "leaf index":
        leaves[0] = ProofLeaf(leaves[0].index ^ 1, leaves[0].value)
        leaves.sort(key=lambda leaf: leaf.index)
    elif kind == "sibling digest":
        siblings[0] = ProofSibling(bytes([siblings[0].digest[0] ^ 1]) + siblings[0].digest[1:], siblings[0].value)
    elif kind == "sibling value":
        siblings[-1] = ProofSibling(siblings[-1].digest, siblings[-1].value + 1)
    elif kind == "dropped sibling":
        siblings.pop()
    elif kind == "account":
        return InclusionProof(proof.asset, proof.height, proof.account_number + 1, proof.depth, proof.leaves,
                              proof.siblings)
    return InclusionProof(proof.asset, proof.height, proof.account_number, proof.depth, tuple(leaves), tuple(siblings))


@pytest.mark.parametrize("kind", ["leaf value", "leaf index", "sibling digest", "sibling value", "dropped sibling",
                                  "account"])
def test_tampered_proof_fails(kind: str) -> None:
    """A changed leaf, sibling, value or account makes the proof fail with a reason."""
    tree, nonces = _tree({account: 10_000 + account for account in range(1, 20)})
    proof = tree.proof_for(7)
    with pytest.raises(VerificationFailed, match="inclusion"):
        verify_inclusion(_tampered(proof, kind), nonces[7], tree.published_root())


@pytest.mark.parametrize("field", ["root", "total", "leaf_count", "height"])
def test_tampered_published_root_fails(field: str) -> None:
    """A proof checked against a changed root, total, size or height fails."""
    tree, nonces = _tree({account: 500 for account in range(1, 9)})
    root = tree.published_root()
    changed = {"root": PublishedRoot(root.asset, root.height, bytes(32), root.total, root.leaf_count),
               "total": PublishedRoot(root.asset, root.height, root.root, root.total + 1, root.leaf_count),
               "leaf_count": PublishedRoot(root.asset, root.height, root.root, root.total, root.leaf_count * 2),
               "height": PublishedRoot(root.asset, root.height + 1, root.root, root.total, root.leaf_count)}[field]
    with pytest.raises(VerificationFailed):
        verify_inclusion(tree.proof_for(3), nonces[3], changed)


def test_wrong_nonce_fails() -> None:
    """Another client's nonce (or a guess) does not open a client's leaves."""
    tree, nonces = _tree({1: 100, 2: 200})
    with pytest.raises(VerificationFailed):
        verify_inclusion(tree.proof_for(1), nonces[2], tree.published_root())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(balances=st.dictionaries(st.integers(0, U64_MAX), st.integers(0, 10**15), min_size=1, max_size=12),
       parts=st.integers(1, 4), seed=st.integers(0, 2**32), flip=st.integers(0, 10_000))
def test_property_every_proof_verifies_every_tampered_one_fails(balances: dict[int, int], parts: int, seed: int,
                                                                 flip: int) -> None:
    """Every inclusion proof verifies; the same proof with any one byte changed is refused."""
    tree, nonces = _tree(balances, parts=parts, seed=seed)
    account = sorted(balances)[flip % len(balances)]
    raw = serialize_inclusion_proof(tree.proof_for(account))
    verify_inclusion(parse_inclusion_proof(raw), nonces[account], tree.published_root(),
                     expected_balance=balances[account])
    position = flip % len(raw)
    changed = raw[:position] + bytes([raw[position] ^ (1 << (flip % 8))]) + raw[position + 1:]
    with pytest.raises(VerificationFailed):
        verify_inclusion(parse_inclusion_proof(changed), nonces[account], tree.published_root(),
                         expected_balance=balances[account])


@pytest.mark.parametrize("mutation", ["trailing", "truncated", "magic", "version", "unordered"])
def test_proof_parser_is_strict(mutation: str) -> None:
    """Trailing bytes, truncation, bad magic or version and unordered leaves are refused."""
    tree, _ = _tree({1: 100, 2: 200, 3: 300})
    proof = tree.proof_for(2)
    raw = serialize_inclusion_proof(proof)
    if mutation == "unordered":
        raw = serialize_inclusion_proof(InclusionProof(proof.asset, proof.height, proof.account_number, proof.depth,
                                                       proof.leaves[::-1], proof.siblings))
    else:
        raw = {"trailing": raw + b"\x00", "truncated": raw[:-1], "magic": b"XPIP" + raw[4:],
               "version": raw[:4] + b"\x02" + raw[5:]}[mutation]
    with pytest.raises(VerificationFailed, match="proof format"):
        parse_inclusion_proof(raw)


def test_negative_liability_cannot_be_encoded() -> None:
    """A negative liability (or one above 64 bits) is refused before any tree is built."""
    with pytest.raises(LiabilityOutOfRange):
        build_liabilities_tree("BTC", 1, [Liability(1, -5)], _nonces([1]))
    with pytest.raises(LiabilityOutOfRange):
        build_liabilities_tree("BTC", 1, [Liability(1, 2**64)], _nonces([1]))


def test_total_overflow_refused() -> None:
    """Liabilities whose total does not fit 64 bits are refused."""
    with pytest.raises(LiabilityOutOfRange):
        build_liabilities_tree("BTC", 1, [(1, U64_MAX), (2, 1)], _nonces([1, 2]))


def test_duplicate_account_refused() -> None:
    """An account listed twice is refused."""
    with pytest.raises(DuplicateAccount):
        build_liabilities_tree("BTC", 1, [(1, 5), (1, 6)], _nonces([1]))


def test_missing_nonce_refused() -> None:
    """An account without a lifetime nonce is refused."""
    with pytest.raises(MissingNonce):
        build_liabilities_tree("BTC", 1, [(1, 5), (2, 6)], _nonces([1]))


def test_parts_bounded() -> None:
    """Splitting into zero or too many parts is refused."""
    with pytest.raises(TooManyParts):
        build_liabilities_tree("BTC", 1, [(1, 5)], _nonces([1]), parts=0)


def test_account_not_in_tree() -> None:
    """Asking for a proof of an account that is not in the tree raises NotInTree."""
    tree, _ = _tree({1: 5})
    with pytest.raises(NotInTree):
        tree.proof_for(2)


def test_bitmex_file_round_trip() -> None:
    """The BitMEX-format file read back by the independent reader is the same tree, node for node."""
    balances = {account: account * 3 for account in range(1, 12)}
    tree, nonces = _tree(balances)
    text = "\n".join(tree.bitmex_lines()) + "\n"
    read = parse_liabilities_file(text)
    check_liabilities_tree(read)
    assert (tree.height, tree.root, tree.total, tree.leaf_count) == (read.height, read.root, read.total,
                                                                      len(read.levels[0]))
    for level, nodes in enumerate(read.levels):
        assert [tree.node(level, position) for position in range(len(nodes))] == list(nodes)
    for account, balance in balances.items():
        assert balance == sum(leaf.value for leaf in scan_liabilities_file(read, account, nonces[account]))
        assert sorted(leaf.index for leaf in scan_liabilities_file(read, account, nonces[account])) == \
            tree.leaf_indices(account)


@pytest.mark.parametrize("text", ["", "height:5\n", "block_height:5\nzz,1\n",
                                  "block_height:5\n" + "00" * 32 + ",1\n" + "00" * 32 + ",1\n",
                                  "block_height:5\n" + "00" * 32 + ",-1\n",
                                  "block_height:5\n" + "00" * 32 + ",18446744073709551616\n"])
def test_bitmex_reader_is_strict(text: str) -> None:
    """Malformed headers, digests, negative or oversized values and incomplete levels are refused."""
    with pytest.raises(VerificationFailed, match="liabilities file"):
        parse_liabilities_file(text)


def test_forked_workers_build_the_same_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashing in two forked worker processes gives exactly the single-process tree."""
    import numpy as np

    from coffer.por import liabilities

    monkeypatch.setattr(liabilities, "PARALLEL_MIN", 8)
    count = 301
    accounts = np.arange(1, count + 1, dtype=np.uint64)
    amounts = accounts * np.uint64(1000)
    blob = random.Random(1).randbytes(32 * count)
    roots = [liabilities.build_liabilities_tree_arrays("BTC", 5, accounts, amounts, blob, parts=3,
                                                       rng=random.Random(9).randbytes, workers=workers).root
             for workers in (1, 2)]
    assert roots[0] == roots[1]


def test_parts_of_one_account_are_never_siblings() -> None:
    """No two parts of one account share a parent, so no inner node shows a client's exact balance."""
    balances = {account: 1_000 + account for account in range(1, 200)}
    for seed in range(5):
        tree, _ = _tree(balances, parts=3, seed=seed)
        for account in balances:
            parents = [index >> 1 for index in tree.leaf_indices(account)]
            assert len(set(parents)) == len(parents)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32), line=st.integers(1, 10_000), field=st.sampled_from(["digest", "value"]))
def test_property_tampered_tree_file_fails(seed: int, line: int, field: str) -> None:
    """Any one node of the BitMEX-format file changed: the tree check or the published root refuses it."""
    tree, _ = _tree({account: 10 + account for account in range(1, 9)}, seed=seed)
    lines = list(tree.bitmex_lines())
    number = 1 + line % (len(lines) - 1)
    digest, value = lines[number].split(",")
    if field == "digest":
        lines[number] = ("f" if digest[0] != "f" else "e") + digest[1:] + "," + value
    else:
        lines[number] = f"{digest},{int(value) + 1}"
    read = parse_liabilities_file("\n".join(lines))
    with pytest.raises(VerificationFailed):
        check_liabilities_tree(read)
        if (read.root, read.total) != (tree.root, tree.total):
            raise VerificationFailed("liabilities tree", "root differs from the published root")


def test_json_proof_round_trip_and_strictness() -> None:
    """The JSON form round-trips, verifies, and refuses unknown fields, floats and bad digests."""
    from coffer.por.verify import inclusion_proof_to_json, parse_inclusion_proof_json

    tree, nonces = _tree({1: 100, 2: 200, 3: 300})
    proof = tree.proof_for(2)
    text = inclusion_proof_to_json(proof)
    assert proof == parse_inclusion_proof_json(text)
    verify_inclusion(parse_inclusion_proof_json(text), nonces[2], tree.published_root(), expected_balance=200)
    for bad in [text[:-1] + ',"extra":1}', text.replace('"depth":', '"depth":1.0,"x":'),
                text.replace(proof.siblings[0].digest.hex(), "ab"), text.replace('"height":800000', '"height":-1')]:
        with pytest.raises(VerificationFailed, match="proof format"):
            parse_inclusion_proof_json(bad)
