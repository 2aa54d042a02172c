"""Alerts that reach people: halts, failed checks, stuck jobs, unseen key holders; kept as
history, mailed encrypted to the security team and posted to a signed webhook."""

from coffer.alerts.center import (
           Alert,
           AlertCenter,
           SignedWebhook,
           TeamMail,
           deliver_webhooks,
           webhook_signature,
)
from coffer.alerts.watch import AlertWatcher

__all__ = ["Alert", "AlertCenter", "AlertWatcher", "SignedWebhook", "TeamMail", "deliver_webhooks",
           "webhook_signature"]
