"""bitcoind's options as `coffer regtest` and the launcher read them (pure: no node)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coffer.chain.regtest.options import OptionError, parse_core_options
from tests.bitcoind_launcher import coffer_argv, conf_options


def test_policy_defaults_follow_core_31_99() -> None:
    """Without options the policy is Core 31.99's: 100 sat/kvB relay, 100 000 data bytes, clusters 64/101 kvB."""
    policy = parse_core_options([]).policy
    assert (100, 100, 3000, 100_000, 64, 101_000, True) == (
        policy.min_relay_fee_sat_per_kvb, policy.incremental_relay_fee_sat_per_kvb,
        policy.dust_relay_fee_sat_per_kvb, policy.datacarrier_size, policy.cluster_count_max,
        policy.cluster_vsize_max, policy.require_standard)


def test_policy_options_are_honoured() -> None:
    """-datacarriersize, -dustrelayfee, -acceptnonstdtxn, -minrelaytxfee and -mocktime change the settings."""
    options = parse_core_options(["-datacarriersize=83", "-dustrelayfee=0.0001", "-acceptnonstdtxn=1",
                                  "-minrelaytxfee=0.00002", "-mocktime=1700000000", "-nopersistmempool"])
    assert (83, 10_000, False, 2_000, 1_700_000_000, False) == (
        options.policy.datacarrier_size, options.policy.dust_relay_fee_sat_per_kvb, options.policy.require_standard,
        options.policy.min_relay_fee_sat_per_kvb, options.mock_time, options.persist_mempool)


def test_later_value_wins_and_unknown_options_are_listed() -> None:
    """A later value of an option wins; options the node has no part for are listed as ignored."""
    options = parse_core_options(["datacarriersize=10", "datacarriersize=20", "blockfilterindex=1", "debug=1"])
    assert (20, ("blockfilterindex",)) == (options.policy.datacarrier_size, options.ignored)


def test_minrelaytxfee_raised_to_incremental() -> None:
    """A relay fee below the incremental relay fee is raised to it, as Core does at startup."""
    options = parse_core_options(["incrementalrelayfee=0.00005", "minrelaytxfee=0.00001"])
    assert 5_000 == options.policy.min_relay_fee_sat_per_kvb


@pytest.mark.parametrize(("item", "message"), [
    ("dustrelayfee=abc", "Invalid amount for -dustrelayfee=<amount>: 'abc'"),
    ("prune=-1", "Prune cannot be configured with a negative value."),
    ("prune=100", "Prune configured below the minimum of 550 MiB.  Please use a higher number."),
    ("testactivationheight=name@2", "Invalid name (name@2) for -testactivationheight=name@height."),
    ("testactivationheight=bip34@-2", "Invalid height value (bip34@-2) for -testactivationheight=name@height."),
    ("testactivationheight=", "Invalid format () for -testactivationheight=name@height."),
])
def test_bad_values_get_core_init_errors(item: str, message: str) -> None:
    """A bad option value is refused with Core's init error text."""
    with pytest.raises(OptionError) as caught:
        parse_core_options([item])
    assert message == str(caught.value)


def test_conf_reads_top_level_and_regtest_section() -> None:
    """bitcoin.conf's top level and [regtest] section apply; other sections do not."""
    text = "regtest=1\nfoo=1\n[main]\nrpcport=1\n[regtest]\nrpcport=18999 # comment\n"
    assert [("regtest", "1"), ("foo", "1"), ("rpcport", "18999")] == conf_options(text)


def test_launcher_maps_bitcoind_command_line(tmp_path: Path) -> None:
    """The launcher keeps Core's chain directory layout and passes every option on, the command line last."""
    (tmp_path / "bitcoin.conf").write_text("regtest=1\n[regtest]\nrpcport=18555\ndatacarriersize=50\n")
    argv = coffer_argv([f"-datadir={tmp_path}", "-datacarriersize=60", "-debug"])
    chain = tmp_path / "regtest"
    assert ["regtest", "--datadir", str(chain / "chainstate"), "--rpcport", "18555"] == argv[:5]
    assert f"rpccookiefile={chain / '.cookie'}" in argv
    options = [argv[i + 1] for i, word in enumerate(argv) if word == "--core-option"]
    assert ["datacarriersize=50", "datacarriersize=60"] == [o for o in options if o.startswith("datacarriersize")]
    assert (chain / "wallets").is_dir()


def test_launcher_refuses_other_chains(tmp_path: Path) -> None:
    """-testnet (or chain=main) is refused with "Error: ..." as bitcoind refuses a bad option."""
    with pytest.raises(SystemExit, match="Error: coffer regtest serves only -regtest"):
        coffer_argv([f"-datadir={tmp_path}", "-testnet"])
