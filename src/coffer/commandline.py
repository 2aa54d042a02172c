"""What every `coffer` command shares: the one `--home` option, opening a home that must exist,
and one-line errors that say what to do next.

Only `coffer init` creates a home; every other command given a missing or uninitialised home
refuses in one line (exit 2) and creates nothing. This module imports nothing heavy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import typer

from coffer.config import CONFIG_FILE, Config, default_home, load_config
from coffer.errors import CofferError

__all__ = ["HomeOption", "HomeMissing", "resolve_home", "open_home", "home_config", "one_line", "EXIT_USAGE",
           "EXIT_FAILED"]

EXIT_USAGE: Final = 2  # a wrong home, a bad configuration, a refused request: the operator must act
EXIT_FAILED: Final = 1  # a check failed or something unexpected broke
SQLITE_PREFIX: Final = "sqlite:///"
MESSAGE_CHARS_MAX: Final = 400

# Not `readable`: a key holder given the coordinator's home never reads it (it may not), and every
# other command checks the home itself with an answer that says what to do (open_home).
HomeOption = typer.Option(None, "--home", envvar="COFFER_HOME", show_envvar=True, readable=False,
                          help="the coordinator's data directory (default ./.coffer)")


class HomeMissing(CofferError):
    """The home a command was given does not exist or was never initialised."""


def resolve_home(home: Path | None) -> Path:
    """The home given, else $COFFER_HOME, else ./.coffer; not checked (for `coffer init`)."""
    return (home or default_home()).resolve()


def open_home(home: Path | None) -> Path:
    """The home given, which must have been made by `coffer init` (nothing is created here)."""
    resolved = resolve_home(home)
    hint = f"run `coffer init --home {resolved}` first, or give --home the right directory"
    if not resolved.is_dir():
        raise HomeMissing(f"no Coffer home at {resolved}: {hint}")
    if not os.access(resolved, os.R_OK | os.X_OK):
        raise HomeMissing(f"cannot read the Coffer home {resolved}: run this command as its owner")
    if not (resolved / CONFIG_FILE).is_file():
        raise HomeMissing(f"{resolved} is not an initialised Coffer home (no {CONFIG_FILE}): {hint}")
    return resolved


def home_config(home: Path | None) -> Config:
    """The configuration of a home that exists, whose SQLite database (if that is the store) exists too."""
    config = load_config(open_home(home))
    url = config.database_url
    if url.startswith(SQLITE_PREFIX) and not Path(url[len(SQLITE_PREFIX):]).is_file():
        raise HomeMissing(f"the database {url[len(SQLITE_PREFIX):]} is missing: run `coffer init --home "
                          f"{config.home}` to create it (or restore it from a backup)")
    return config


def one_line(error: BaseException) -> str:
    """An error as one line: its first line, bounded."""
    text = str(error).strip().splitlines()
    first = text[0] if text else type(error).__name__
    return first[:MESSAGE_CHARS_MAX]
