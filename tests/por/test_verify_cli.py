"""coffer-verify on a whole published snapshot: passes as published, fails with a reason on any change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from coffer.por.verify import main
from tests.por.conftest import Published


def _run(directory: Path, published: Published, *extra: str) -> int:
    return main([str(directory), "--group-key", published.group_key.hex(), *extra])


def test_published_snapshot_verifies(published: Published, capsys: pytest.CaptureFixture[str]) -> None:
    """The snapshot as published passes every check, including the node's view at the height."""
    assert 0 == _run(published.directory, published, "--rpc", published.rpc_url)
    out = capsys.readouterr().out
    assert "node confirms" in out and "log: 1 entries" in out


def _copy(published: Published, tmp_path: Path) -> Path:
    target = tmp_path / "snapshot"
    shutil.copytree(published.directory, target)
    return target


def _edit_json(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))


def _fails(directory: Path, published: Published, capsys: pytest.CaptureFixture[str], reason: str, *extra: str) -> None:
    assert 1 == _run(directory, published, *extra)
    err = capsys.readouterr().err
    assert reason in err, err


def _balance_plus_one(doc: dict) -> None:  # type: ignore[type-arg]
    doc["entries"][0]["balance"] += 1
    doc["total"] += 1


def _swap_signature(doc: dict) -> None:  # type: ignore[type-arg]
    doc["entries"][0]["proofs"][0]["signature"] = doc["entries"][2]["proofs"][0]["signature"]


def _old_challenge(doc: dict) -> None:  # type: ignore[type-arg]
    doc["height"] -= 1


def _statement_total(doc: dict) -> None:  # type: ignore[type-arg]
    doc["statement"]["liabilities_total"] -= 1


def _statement_signature(doc: dict) -> None:  # type: ignore[type-arg]
    doc["signature"] = doc["signature"][:-2] + ("00" if doc["signature"][-2:] != "00" else "01")


@pytest.mark.parametrize(("file", "change", "reason"), [
    ("reserves-BTC.json", _balance_plus_one, "statement"),
    ("reserves-BTC.json", _swap_signature, "proof of control"),
    ("reserves-BTC.json", _old_challenge, "challenge is not bound"),
    ("statement-BTC.json", _statement_total, "statement signature"),
    ("statement-BTC.json", _statement_signature, "statement signature"),
])
def test_tampered_json_fails(published: Published, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             file: str, change, reason: str) -> None:  # type: ignore[no-untyped-def]
    """A changed reserves entry, proof of control, challenge or statement is refused with its reason."""
    directory = _copy(published, tmp_path)
    _edit_json(directory / file, change)
    _fails(directory, published, capsys, reason)


def test_balance_not_on_chain_fails(published: Published, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A claimed balance the node does not see at the height is refused by the RPC check."""
    from coffer.por.verify import VerificationFailed, rpc_client, verify_reserves_rpc

    document = json.loads((published.directory / "reserves-BTC.json").read_text())
    document["entries"][1]["balance"] += 5
    with pytest.raises(VerificationFailed, match="on chain"):
        verify_reserves_rpc(document, rpc_client(published.rpc_url))


def test_node_at_another_tip_is_reported(published: Published) -> None:
    """A node whose tip moved past the snapshot height is told to rewind, not silently trusted."""
    from coffer.por.verify import VerificationFailed, rpc_client, verify_reserves_rpc

    document = json.loads((published.directory / "reserves-BTC.json").read_text())
    document["height"] -= 1
    document["block_hash"] = rpc_client(published.rpc_url)("getblockhash", [document["height"]])
    with pytest.raises(VerificationFailed, match="rewind"):
        verify_reserves_rpc(document, rpc_client(published.rpc_url))


@pytest.mark.parametrize("line", [0, 1, 2, -1])
def test_tampered_tree_file_fails(published: Published, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  line: int) -> None:
    """Changing the header, the root, an inner node or a leaf value of the tree file is refused."""
    directory = _copy(published, tmp_path)
    path = directory / "liabilities-BTC.txt"
    lines = path.read_text().splitlines()
    if line == 0:
        lines[0] = "block_height:1"
    elif line == -1:
        digest, value = lines[-1].split(",")
        lines[-1] = f"{digest},{int(value) + 1}"
    else:
        lines[line] = ("0" if lines[line][0] != "0" else "1") + lines[line][1:]
    path.write_text("\n".join(lines) + "\n")
    _fails(directory, published, capsys, "liabilities tree")


@pytest.mark.parametrize("edit", ["drop", "signature", "statement", "reorder"])
def test_tampered_log_fails(published: Published, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            edit: str) -> None:
    """A log with an entry dropped, re-signed badly, altered or reordered breaks the chain."""
    from coffer.por.statement import PublicLog

    directory = _copy(published, tmp_path)
    log = PublicLog(directory / "log.jsonl", published.group_key)
    statement = log.entries()[0]["statement"]
    log.append(dict(statement, height=statement["height"] + 1),
               lambda m: bytes(published.signing_key.sign(m).signature))
    lines = (directory / "log.jsonl").read_text().splitlines()
    if edit == "drop":
        lines = lines[1:]
    elif edit == "reorder":
        lines = [lines[1], lines[0]]
    else:
        entry = json.loads(lines[1])
        if edit == "signature":
            entry["signature"] = "00" * 64
        else:
            entry["statement"]["reserves_total"] += 1
        lines[1] = json.dumps(entry)
    (directory / "log.jsonl").write_text("\n".join(lines) + "\n")
    _fails(directory, published, capsys, "FAILED log")


def test_client_checks_own_proof(published: Published, capsys: pytest.CaptureFixture[str]) -> None:
    """A client verifies their private proof file with their nonce and balance."""
    account = 1017
    assert 0 == _run(published.directory, published, "--proof", str(published.proofs_dir / "BTC" / f"{account}.bin"),
                     "--account-nonce", published.nonces[account].hex(), "--balance", str(published.balances[account]))
    assert f"hold {published.balances[account]}" in capsys.readouterr().out


def test_client_scans_tree_file(published: Published, capsys: pytest.CaptureFixture[str]) -> None:
    """Without a proof file a client finds their leaves by scanning the published tree."""
    account = 1003
    assert 0 == _run(published.directory, published, "--account", str(account),
                     "--account-nonce", published.nonces[account].hex(), "--balance", str(published.balances[account]))


def test_client_with_wrong_balance_finds_out(published: Published, capsys: pytest.CaptureFixture[str]) -> None:
    """A client whose balance is understated in the tree is told so."""
    account = 1017
    _fails(published.directory, published, capsys, "your balance", "--proof",
           str(published.proofs_dir / "BTC" / f"{account}.bin"), "--account-nonce", published.nonces[account].hex(),
           "--balance", str(published.balances[account] + 1))


def test_client_omitted_from_a_published_tree_finds_out(published: Published, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The exchange publishes a snapshot leaving out a real client (their balance, their nonce):
    the snapshot is self-consistent, but that client scans the published tree with their own
    nonce and the check `inclusion` fails finding 0 of their balance."""
    from coffer.por.publish import publish_snapshot

    omitted = next(account for account, balance in sorted(published.balances.items()) if balance > 0)
    kept = sorted((account, balance) for account, balance in published.balances.items() if account != omitted)
    document = json.loads((published.directory / "reserves-BTC.json").read_text())
    snapshot = published.result.statements["BTC"]
    directory = tmp_path / "omitting"
    publish_snapshot(directory, chain=snapshot["chain"], height=document["height"], block_hash=document["block_hash"],
                     liabilities={"BTC": kept}, nonces=published.nonces, reserves={"BTC": document},
                     sign=lambda message: bytes(published.signing_key.sign(message).signature),
                     public_key=published.group_key, log_path=tmp_path / "log.jsonl")
    assert 0 == _run(directory, published)  # nothing but the client's own check can see the omission
    capsys.readouterr()
    _fails(directory, published, capsys, "FAILED inclusion: the tree holds 0 for your account", "--account", str(omitted),
           "--account-nonce", published.nonces[omitted].hex(), "--balance", str(published.balances[omitted]))


def test_wrong_group_key_fails(published: Published, capsys: pytest.CaptureFixture[str]) -> None:
    """A snapshot checked against a key the client did not pin fails on the statement signature."""
    assert 1 == main([str(published.directory), "--group-key", "ab" * 32])
    assert "statement signature" in capsys.readouterr().err


def test_rewind_checks_a_node_ahead_of_the_snapshot(published: Published, capsys: pytest.CaptureFixture[str]) -> None:
    """With --rewind a node mined past the snapshot is taken back for the scan and restored after."""
    from coffer.por.verify import rpc_client

    rpc = rpc_client(published.rpc_url)
    published.node.generate(2)
    tip = rpc("getbestblockhash", [])
    try:
        _fails(published.directory, published, capsys, "rewind", "--rpc", published.rpc_url)
        assert 0 == _run(published.directory, published, "--rpc", published.rpc_url, "--rewind")
        assert tip == rpc("getbestblockhash", [])
    finally:
        rpc("invalidateblock", [rpc("getblockhash", [rpc("getblockcount", []) - 1])])


@pytest.mark.parametrize("field", ["liabilities_root", "liabilities_total", "leaf_count"])
def test_tampered_snapshot_root_fails(published: Published, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      field: str) -> None:
    """A snapshot.json whose root, total or size differs from the signed statement is refused."""
    directory = _copy(published, tmp_path)

    def change(doc: dict) -> None:  # type: ignore[type-arg]
        item = doc["assets"]["BTC"]
        item[field] = ("00" * 32) if field == "liabilities_root" else item[field] * 2

    _edit_json(directory / "snapshot.json", change)
    assert 1 == _run(directory, published)
    assert "statement" in capsys.readouterr().err or field == "leaf_count"


def test_missing_or_garbled_files_fail_cleanly(published: Published, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A missing proof file, a missing statement or a non-ASCII tree file gives a reason and exit code 1."""
    directory = _copy(published, tmp_path)
    _fails(directory, published, capsys, "file", "--proof", str(tmp_path / "nope.bin"), "--account-nonce", "00" * 32)
    (directory / "liabilities-BTC.txt").write_bytes(b"\xff\xfe")
    _fails(directory, published, capsys, "FAILED")
    (directory / "statement-BTC.json").unlink()
    _fails(directory, published, capsys, "statement")
