"""A poll-able stream of new-block and reorg events over any BitcoinChain.

`BlockWatcher.poll()` compares the chain's active blocks with the ones it saw last and returns
BlockDisconnected events (tip first) followed by BlockConnected events (lowest first). It only
reads through the interface, so it works the same for the embedded node and Bitcoin Core.
"""

from __future__ import annotations

from coffer.chain.errors import BlockNotFound, ChainError
from coffer.chain.interface import BitcoinChain, BlockConnected, BlockDisconnected, ChainEvent

__all__ = ["BlockWatcher", "REORG_DEPTH_MAX", "CATCH_UP_BLOCKS_MAX"]

REORG_DEPTH_MAX = 1000
INITIAL_DEPTH = 100  # hashes read at start; the memory grows to REORG_DEPTH_MAX as blocks arrive
CATCH_UP_BLOCKS_MAX = 10_000


class BlockWatcher:
    """Remembers the hashes of the last REORG_DEPTH_MAX active blocks it reported.

    `start_height` resumes after a block the consumer already processed: the first poll reports
    blocks above it. A reorg deeper than the memory raises ChainError (rescan from scratch then).
    """

    def __init__(self, chain: BitcoinChain, *, start_height: int | None = None) -> None:
        self._chain = chain
        self._seen: dict[int, str] = {}
        tip = chain.tip()
        first = tip.height if start_height is None else start_height
        for height in range(max(first - INITIAL_DEPTH, 0), min(first, tip.height) + 1):
            self._seen[height] = chain.block_hash(height)
        self._top = min(first, tip.height)

    @property
    def height(self) -> int:
        return self._top

    def poll(self) -> list[ChainEvent]:
        tip = self._chain.tip()
        if self._seen.get(self._top) == tip.hash and tip.height == self._top:
            return []
        fork = min(self._top, tip.height)
        while fork >= 0 and fork in self._seen:
            try:
                if self._chain.block_hash(fork) == self._seen[fork]:
                    break
            except BlockNotFound:
                pass
            fork -= 1
        if fork < 0 or (fork not in self._seen and self._seen):
            raise ChainError(f"reorg deeper than {REORG_DEPTH_MAX} blocks")
        events: list[ChainEvent] = []
        for height in range(self._top, fork, -1):
            events.append(BlockDisconnected(height, self._seen.pop(height)))
        end = min(tip.height, fork + CATCH_UP_BLOCKS_MAX)
        for height in range(fork + 1, end + 1):
            block_hash = self._chain.block_hash(height)
            self._seen[height] = block_hash
            events.append(BlockConnected(height, block_hash))
        self._top = end
        for old in [h for h in self._seen if h < end - REORG_DEPTH_MAX]:
            del self._seen[old]
        return events
