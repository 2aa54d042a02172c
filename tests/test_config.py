"""Configuration: documented defaults, file values, environment overrides, precise errors."""

from __future__ import annotations

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
