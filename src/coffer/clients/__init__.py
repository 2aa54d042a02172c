"""Client identities: password (argon2id) plus TOTP second factor; the security centre signs in here."""

from coffer.clients.directory import Client, ClientDirectory, Enrollment, current_code
from coffer.clients.errors import BadClientData, ClientError, ClientExists, SignInRefused, TwoFactorRefused
from coffer.clients.seal import HsmSeal, SecretSeal

__all__ = ["Client", "ClientDirectory", "Enrollment", "current_code", "BadClientData", "ClientError",
           "ClientExists", "SignInRefused", "TwoFactorRefused", "HsmSeal", "SecretSeal"]
