"""Errors of client identities: sign-in and two-factor. Messages never say which factor failed."""

from __future__ import annotations

from coffer.errors import CofferError

__all__ = ["ClientError", "SignInRefused", "TwoFactorRefused", "ClientExists", "BadClientData"]


class ClientError(CofferError):
    """Root of the clients part's errors."""


class SignInRefused(ClientError):
    """Wrong client id, password or two-factor code (deliberately not saying which)."""


class TwoFactorRefused(ClientError):
    """The two-factor code is wrong, expired or was already used."""


class ClientExists(ClientError):
    """A client with this id already exists."""


class BadClientData(ClientError):
    """A client id, mail address or password does not meet the rules."""
