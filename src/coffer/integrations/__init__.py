"""The exchange's API integrations: HMAC-signed requests under keys that operators make, rotate
and revoke; secrets sealed under the coordinator's HSM, shown once."""

from coffer.integrations.errors import (
    AuthenticationFailed,
    IdempotencyConflict,
    IntegrationError,
    IntegrationNotFound,
)
from coffer.integrations.hmac_auth import sign_feed, sign_request, verify_request
from coffer.integrations.store import Integration, IntegrationStore, NewKey, Replay

__all__ = ["AuthenticationFailed", "IdempotencyConflict", "Integration", "IntegrationError", "IntegrationNotFound",
           "IntegrationStore", "NewKey", "Replay", "sign_feed", "sign_request", "verify_request"]
