"""The coordinator's relay of notices to every key holder: whitelist entries and freezes go out as
they happen. A key holder records each by its own clock; one that cannot be reached only starts its
time locks later (it never signs sooner), so a failed delivery is logged, never raised.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from coffer.config import Config
from coffer.errors import CofferError
from coffer.log import get_logger
from coffer.tls import TlsFiles

__all__ = ["KeyholderRelay", "coordinator_tls", "signer_url"]

log = get_logger("coffer.keyholder.relay")
Send = Callable[[dict[str, Any]], dict[str, Any]]


def coordinator_tls(home: Path) -> TlsFiles:
    from coffer.layout import coordinator_tls as layout_tls

    return layout_tls(home)


def signer_url(config: Config, signer_id: int) -> str:
    return f"https://127.0.0.1:{int(config.get('cold', 'signer_port_base')) + signer_id}"


def _poster(call: Callable[[str, dict[str, Any]], dict[str, Any]], path: str) -> Send:
    return lambda body: call(path, body)


class KeyholderRelay:
    """Posts notices to the cold signers (by configuration) and the co-signers (by their port files; the FROST
    and DKLs23 engines of one co-signer share one guard and one facts store)."""

    def __init__(self, config: Config) -> None:
        self._config = config

    def senders(self) -> dict[str, Send]:
        from coffer.cold.service import HttpSignerClient
        from coffer.mpc.service.client import CosignerClient

        home, tls = self._config.home, coordinator_tls(self._config.home)
        senders: dict[str, Send] = {}
        for signer_id in range(1, int(self._config.get("cold", "signers")) + 1):
            senders[f"signer-{signer_id}"] = HttpSignerClient(signer_id, signer_url(self._config, signer_id), tls,
                                                              timeout_s=10).facts
        from coffer.layout import KeyholderKind, keyholder_directories

        for cosigner, directory in keyholder_directories(home, KeyholderKind.COSIGNER):
            if (directory / "port").exists():  # one process serves both engines, with one facts store
                client = CosignerClient(cosigner, int((directory / "port").read_text()), tls, batching=False)
                senders[f"cosigner-{cosigner}"] = _poster(client.call, "/v1/facts")
        return senders

    def announce(self, notices: list[Any]) -> dict[str, Any]:
        from coffer.keyholder.facts import notices_json

        document = notices_json(notices)
        replies: dict[str, Any] = {}
        for name, send in self.senders().items():
            try:
                replies[name] = send(document)
            except (CofferError, OSError) as exc:
                log.warning("keyholder.notice_not_delivered", keyholder=name, error=type(exc).__name__)
        return replies

    def attach(self, service: Any) -> None:
        """Relay every new whitelist entry and freeze of a `PolicyService`."""
        from coffer.keyholder.facts import FreezeNotice, WhitelistNotice

        service.whitelist_hooks.append(
            lambda entry: self.announce([WhitelistNotice(entry.account, entry.asset, entry.destination)]))
        service.freeze_hooks.append(lambda account: self.announce([FreezeNotice(account)]))
