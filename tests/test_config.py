"""Configuration: documented defaults, file values, environment overrides, precise errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from coffer.config import SETTINGS, load_config, render_default_toml
from coffer.errors import ConfigError


def test_defaults_apply_without_a_file(tmp_path: Path) -> None:
    """With no coffer.toml every setting has its documented default."""
    config = load_config(tmp_path, environ={})
    assert 15 == config.get("recon", "positions_interval_s")
    assert 600 == config.get("recon", "onchain_interval_s")
    assert f"sqlite:///{tmp_path / 'coffer.db'}" == config.database_url


def test_rendered_defaults_parse_back_to_the_defaults(tmp_path: Path) -> None:
    """The file `coffer init` writes lists every setting and loads to the same values."""
    (tmp_path / "coffer.toml").write_text(render_default_toml())
    config = load_config(tmp_path, environ={})
    for section, settings in SETTINGS.items():
        for key, setting in settings.items():
            assert setting.default == config.get(section, key)


def test_environment_overrides_file(tmp_path: Path) -> None:
    """COFFER_<SECTION>_<KEY> beats the file."""
    (tmp_path / "coffer.toml").write_text("[cold]\nthreshold = 2\n")
    config = load_config(tmp_path, environ={"COFFER_COLD_THRESHOLD": "4"})
    assert 4 == config.get("cold", "threshold")


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("[cold]\nsigners = 5\nthreshold = \"three\"\n", 3, "cold.threshold"),
        ("[cold]\nsignerz = 5\n", 2, "cold.signerz"),
        ("\n[nosuch]\nx = 1\n", 2, "nosuch"),
        ("[recon]\npositions_interval_s = -1\n", 2, "recon.positions_interval_s"),
        ("[cold]\nsigners = 1.5\n", 2, "cold.signers"),
    ],
)
def test_bad_file_names_file_line_and_key(tmp_path: Path, text: str, line: int, key: str) -> None:
    """A bad value, unknown key or unknown section is reported with file, line and key."""
    path = tmp_path / "coffer.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, environ={})
    assert (str(path), line, key) == (caught.value.path, caught.value.line, caught.value.key)
    assert f"{path}:{line}" in str(caught.value)


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    """Invalid TOML is reported with its line."""
    (tmp_path / "coffer.toml").write_text("[cold]\nsigners = = 5\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, environ={})
    assert 2 == caught.value.line


def test_bad_environment_value_is_refused(tmp_path: Path) -> None:
    """A non-integer override of an integer setting is refused, naming the variable."""
    with pytest.raises(ConfigError, match="COFFER_COLD_SIGNERS"):
        load_config(tmp_path, environ={"COFFER_COLD_SIGNERS": "five"})


def test_sections_are_typed(tmp_path: Path) -> None:
    """Each table is a frozen typed section: ints are ints, strings are strings, and nothing can be reassigned."""
    (tmp_path / "coffer.toml").write_text("[cold]\nsigners = 7\nthreshold = 4\n[web]\nhost = \"0.0.0.0\"\n")
    config = load_config(tmp_path, environ={})
    assert (7, 4, "0.0.0.0") == (config.cold.signers, config.cold.threshold, config.web.host)
    assert 4 == config.get("cold", "threshold")
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(config.cold, "threshold", 1)  # noqa: B010 (the point is that it is refused)


CROSS_FIELD = [
    ("[cold]\nsigners = 5\nthreshold = 9\n", 3, "cold.threshold", "threshold 9 is more than the 5 signers"),
    ("[cold]\nsigners = 16\nthreshold = 3\n", 2, "cold.signers", "at most 15 signers"),
    ("[recon]\npositions_interval_s = 0\n", 2, "recon.positions_interval_s", "must be at least 1"),
    ("[halt]\nnotice_max_age_s = 0\n", 2, "halt.notice_max_age_s", "must be at least 1"),
    ("[mpc]\nfrost_threshold = 1\n", 2, "mpc.frost_threshold", "threshold of at least 2"),
    ("[mpc]\ncosigners = 3\nfrost_threshold = 4\n", 3, "mpc.frost_threshold", "more than the 3 co-signers"),
    ("[mpc]\necdsa_parties = 6\n", 2, "mpc.ecdsa_parties", "6 parties but only 5 co-signers"),
    ("[mpc]\necdsa_threshold = 4\n", 2, "mpc.ecdsa_threshold", "more than the 3 parties"),
    ("[web]\nport = 9000\nnotice_port = 9000\n", 3, "web.notice_port", "must differ from web.port"),
    ("[web]\nport = 70000\n", 2, "web.port", "must be a port between 1 and 65535"),
    ("[cold]\nsigner_port_base = 65533\n", 2, "cold.signer_port_base", "past port 65535"),
]


@pytest.mark.parametrize(("text", "line", "key", "message"), CROSS_FIELD, ids=[c[2] for c in CROSS_FIELD])
def test_cross_field_rules_name_file_line_and_key(tmp_path: Path, text: str, line: int, key: str,
                                                  message: str) -> None:
    """A value out of range or inconsistent with another is refused at load, naming where it was set."""
    path = tmp_path / "coffer.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, environ={})
    assert (str(path), line, key) == (caught.value.path, caught.value.line, caught.value.key)
    assert message in str(caught.value)


def test_cross_field_rule_names_the_environment_variable(tmp_path: Path) -> None:
    """A threshold above the signers set by the environment names the variable, not the file."""
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, environ={"COFFER_COLD_THRESHOLD": "6"})
    assert ("$COFFER_COLD_THRESHOLD", "cold.threshold") == (caught.value.path, caught.value.key)
