"""Start-up and shutdown of a key-holder process, the same for every kind.

`prepare_process()` runs first, before any secret is opened: the process hardens itself (not
dumpable, no core files) and puts the recursion limit back if an import raised it. Then
`serve_until_stopped()` serves the mounted engines until SIGTERM or SIGINT, writing the port it
listens on to `port_file` and logging where it listens.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

from coffer.keyholder.hardening import Hardening, harden_process
from coffer.keyholder.limits import restore_recursion_limit
from coffer.keyholder.server import KeyholderServer
from coffer.log import get_logger

__all__ = ["prepare_process", "serve_until_stopped"]

log = get_logger("coffer.keyholder.process")


def prepare_process(kind: str, number: int) -> Hardening:
    """Harden this process and reset the recursion limit; log what the kernel now reports."""
    state = harden_process()
    restore_recursion_limit()
    log.info("keyholder.hardened", kind=kind, id=number, pid=os.getpid(), dumpable=state.dumpable,
             core_bytes_max=state.core_bytes_max)
    return state


def serve_until_stopped(server: KeyholderServer, *, kind: str, number: int, port_file: Path | None = None) -> None:
    """Serve until SIGTERM or SIGINT; then stop accepting and return (the caller closes its stores)."""
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    restore_recursion_limit()  # engines may have imported the Ethereum stack while mounting
    server.start()
    if port_file is not None:  # atomically: a reader polling for the file never sees it empty
        temporary = port_file.with_name(port_file.name + ".tmp")
        temporary.write_text(str(server.port))
        temporary.replace(port_file)
    log.info("keyholder.listening", kind=kind, id=number, host=server.host, port=server.port, pid=os.getpid(),
             routes=sorted(path for _method, path in server.routes))
    done.wait()
    server.stop()
