"""Hosts of their own for tests: one Linux network namespace per key holder, joined to the root
namespace (the coordinator's) by a veth pair, so a key holder is reached only over a network.

Addresses come from 198.18.0.0/15 (RFC 2544, the benchmarking range), one /30 per link: the root
end is .1, the key holder's end .2. Nothing here touches an address, route or device it did not
create; every namespace and device is removed on exit, on a failed test too. Names carry this
process's id, so `sweep_stale()` can remove what a killed run left behind. Needs root and `ip`.
Test-only: production key holders run on real hosts.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final

from coffer.errors import CofferError

__all__ = ["Link", "Namespaces", "NetnsError", "netns_available", "sweep_stale", "BENCHMARK_NET", "LINKS_MAX"]

BENCHMARK_NET: Final = ipaddress.IPv4Network("198.18.0.0/15")
LINK_PREFIX: Final = 30
LINKS_MAX: Final = 64
IP_TIMEOUT_S: Final = 20.0
ALLOCATION_TRIES_MAX: Final = 32
NAME_PREFIX: Final = "coffer"
_NAME = re.compile(rf"^{NAME_PREFIX}-(\d+)-([0-9a-f]{{6}})-(\d+)$")


class NetnsError(CofferError):
    """An `ip` command failed (not root, no `ip`, a name or address already taken)."""


@dataclass(frozen=True, slots=True)
class Link:
    """One key holder's host: its namespace and the two ends of its veth pair."""

    number: int
    namespace: str
    root_device: str
    inner_device: str
    root_address: str  # the coordinator's end, in the root namespace
    address: str  # the key holder's own address, inside its namespace

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside this link's namespace."""
        return ["ip", "netns", "exec", self.namespace, *argv]


def _ip(*args: str) -> str:
    try:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise NetnsError(f"ip {' '.join(args)}: {type(error).__name__}") from None
    if done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip()[:300]}")
    return done.stdout


def netns_available() -> bool:
    """True when this process may create namespaces (root and `ip` present)."""
    return os.geteuid() == 0 and shutil.which("ip") is not None


def _used_addresses() -> set[ipaddress.IPv4Address]:
    """Every IPv4 address on the root namespace's devices (so a /30 taken by another run is skipped)."""
    out = _ip("-o", "-4", "addr", "show")
    return {ipaddress.IPv4Interface(word).ip for line in out.splitlines() for word in line.split()[3:4]}


def _free_blocks(count: int) -> list[ipaddress.IPv4Network]:
    blocks_total = 2 ** (LINK_PREFIX - BENCHMARK_NET.prefixlen)
    used = _used_addresses()
    chosen: list[ipaddress.IPv4Network] = []
    for _ in range(ALLOCATION_TRIES_MAX * count):
        index = 1 + secrets.randbelow(blocks_total - 1)
        block = ipaddress.IPv4Network((int(BENCHMARK_NET.network_address) + 4 * index, LINK_PREFIX))
        if block not in chosen and not any(address in block for address in used):
            chosen.append(block)
        if len(chosen) == count:
            return chosen
    raise NetnsError(f"no {count} free /{LINK_PREFIX} blocks in {BENCHMARK_NET}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale() -> list[str]:
    """Delete the namespaces (and so their veth pairs) that runs no longer alive left behind."""
    removed = []
    for line in _ip("netns", "list").splitlines():
        name = line.split()[0] if line.split() else ""
        match = _NAME.match(name)
        if match and not _alive(int(match.group(1))):
            _ip("netns", "delete", name)
            removed.append(name)
    return removed


class Namespaces:
    """`count` namespaces, one per key holder (numbered 1..count), created on enter, removed on exit."""

    def __init__(self, numbers: Sequence[int]) -> None:
        if not 0 < len(numbers) <= LINKS_MAX or len(set(numbers)) != len(numbers):
            raise NetnsError(f"1 to {LINKS_MAX} distinct link numbers, got {list(numbers)}")
        self.run = secrets.token_hex(3)
        self.numbers = tuple(numbers)
        self.links: dict[int, Link] = {}

    def __enter__(self) -> Namespaces:
        try:
            self.create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def create(self) -> None:
        sweep_stale()
        for number, block in zip(self.numbers, _free_blocks(len(self.numbers)), strict=True):
            hosts = list(block.hosts())
            link = Link(number, f"{NAME_PREFIX}-{os.getpid()}-{self.run}-{number}", f"cf{self.run}r{number}",
                        f"cf{self.run}i{number}", str(hosts[0]), str(hosts[1]))
            self.links[number] = link  # recorded first: close() removes whatever part was made
            self._make(link)

    @staticmethod
    def _make(link: Link) -> None:
        _ip("netns", "add", link.namespace)
        _ip("link", "add", link.root_device, "type", "veth", "peer", "name", link.inner_device)
        _ip("link", "set", link.inner_device, "netns", link.namespace)
        _ip("addr", "add", f"{link.root_address}/{LINK_PREFIX}", "dev", link.root_device)
        _ip("link", "set", link.root_device, "up")
        inside = ("netns", "exec", link.namespace, "ip")
        _ip(*inside, "addr", "add", f"{link.address}/{LINK_PREFIX}", "dev", link.inner_device)
        _ip(*inside, "link", "set", link.inner_device, "up")
        _ip(*inside, "link", "set", "lo", "up")

    def link(self, number: int) -> Link:
        return self.links[number]

    def run_in(self, number: int, argv: Sequence[str], *, timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run `argv` inside namespace `number` and wait for it."""
        return subprocess.run(self.links[number].exec_argv(argv), capture_output=True, text=True,
                              timeout=timeout_s, check=False)

    def set_link_up(self, number: int, up: bool) -> None:
        """Take the root end of a veth pair down (the cable pulled) or up again."""
        _ip("link", "set", self.links[number].root_device, "up" if up else "down")

    def close(self) -> None:
        """Remove every namespace and root-side device this object made; errors are collected, not raised
        half-way, so one failure does not leave the rest behind."""
        problems = []
        for link in self.links.values():
            for args in (("link", "delete", link.root_device), ("netns", "delete", link.namespace)):
                try:
                    _ip(*args)
                except NetnsError as error:
                    if "Cannot find" not in str(error) and "No such file" not in str(error):
                        problems.append(str(error))
        self.links.clear()
        if problems:
            raise NetnsError("; ".join(problems))
