"""Adapters from the ledger and the chains to the pure proof-of-reserves core.

Liabilities come from `coffer.ledger.Ledger.client_liabilities` (available + held per client
account), optionally adjusted by derivatives equity (unrealised PnL at mark) and floored at zero:
a negative equity cannot be encoded and is not a liability. Reserve balances come from the
`BitcoinChain` / `EthereumChain` interfaces at one tip that must not move while they are read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from coffer.por.errors import ReservesError
from coffer.por.liabilities import Liability
from coffer.por.verify import tree_unit_scale

if TYPE_CHECKING:
    from coffer.chain.interface import BitcoinChain, BlockRef, EthereumChain
    from coffer.exchange.model import Contract, PositionSnapshot
    from coffer.ledger import Ledger

__all__ = ["liabilities_from_ledger", "floor_equity", "unrealised_pnl_by_account", "bitcoin_balances_at_tip",
           "ethereum_balances"]


def floor_equity(balances: Iterable[tuple[int, int]], unrealised_pnl: Mapping[int, int] | None = None) -> list[Liability]:
    """Balance plus unrealised PnL per account, floored at zero."""
    pnl = unrealised_pnl or {}
    return [Liability(account, max(0, balance + pnl.get(account, 0))) for account, balance in balances]


def unrealised_pnl_by_account(positions: Iterable[PositionSnapshot], contracts: Mapping[str, Contract],
                              mark_values: Mapping[str, int], account_numbers: Mapping[str, int],
                              asset: str) -> dict[int, int]:
    """Unrealised PnL at mark per account number, over the contracts that settle in `asset`.

    `mark_values` is each contract's value at the mark price (the exchange's v(mark));
    `account_numbers` maps the exchange's account ids to the ledger's 64-bit account numbers.
    """
    from coffer.exchange.accounting import Position, unrealised_pnl

    pnl: dict[int, int] = {}
    for position in positions:
        if contracts[position.contract].settle_asset != asset:
            continue
        number = account_numbers[position.account]
        pnl[number] = pnl.get(number, 0) + unrealised_pnl(Position(position.size, position.cost_minor),
                                                          mark_values[position.contract])
    return pnl


def liabilities_from_ledger(ledger: Ledger, asset: str, *,
                            unrealised_pnl: Mapping[int, int] | None = None) -> list[Liability]:
    """Every client account's liability in `asset` in the tree's unit, keyed by its 64-bit account number."""
    rows = ledger.client_liabilities(asset)
    scale = tree_unit_scale(asset)
    floored = floor_equity(((row.account_number, row.total) for row in rows), unrealised_pnl)
    # The tree counts in its own unit (ETH: gwei); round liabilities up so rounding never flatters.
    return [Liability(item.account_number, -(-item.amount // scale)) for item in floored]


def bitcoin_balances_at_tip(chain: BitcoinChain, addresses: Sequence[str]) -> tuple[BlockRef, dict[str, int]]:
    """Confirmed balance of each address at the current tip; refuses if the tip moves meanwhile."""
    from embit.script import address_to_scriptpubkey

    scripts = {address_to_scriptpubkey(address).data: address for address in addresses}
    before = chain.tip()
    utxos = chain.unspent(list(scripts))
    after = chain.tip()
    if before != after:
        raise ReservesError("the chain tip moved while balances were read; take the snapshot again")
    balances = dict.fromkeys(addresses, 0)
    for utxo in utxos:
        balances[scripts[utxo.script_pubkey]] += utxo.amount_sats
    return before, balances


def ethereum_balances(chain: EthereumChain, addresses: Sequence[str]) -> tuple[int, dict[str, int]]:
    """Balance in wei of each address at one block number; refuses if a block arrives meanwhile."""
    before = chain.block_number()
    balances = {address: chain.balance_wei(address) for address in addresses}
    if chain.block_number() != before:
        raise ReservesError("a block arrived while balances were read; take the snapshot again")
    return before, balances
