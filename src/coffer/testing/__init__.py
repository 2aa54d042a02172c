"""Harness for tests, benchmarks and the demo: real parts started on loopback.

A PostgreSQL server (`PostgresServer`), SoftHSM2 tokens (`make_token`), separate service
processes (`ServiceProcess`) and `wait_until`. Nothing here is used by production paths.
"""

from coffer.testing.postgres import PostgresServer, PostgresUnavailable
from coffer.testing.processes import ServiceFailed, ServiceProcess, free_port
from coffer.testing.tokens import TokenHandle, make_token
from coffer.testing.wait import WaitTimeout, wait_until

__all__ = ["PostgresServer", "PostgresUnavailable", "ServiceProcess", "ServiceFailed", "free_port",
           "TokenHandle", "make_token", "WaitTimeout", "wait_until"]
