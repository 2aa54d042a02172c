"""The limits every HTTP edge shares: JSON depth measured without parsing (strings ignored), body
and depth refusals by rule, and no server process left with a raised recursion limit."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coffer.keyholder.errors import BodyTooLarge, JsonTooDeep
from coffer.keyholder.limits import JSON_DEPTH_MAX, RECURSION_LIMIT, check_body, json_depth

_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab', max_size=6),
                     lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children,
                                                                                         max_size=3), max_leaves=20)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


@given(_JSON)
def test_json_depth_equals_the_nesting_of_the_value(value: object) -> None:
    """For any JSON value, brackets inside strings (escaped quotes too) do not count."""
    assert _depth(value) == json_depth(json.dumps(value).encode())


def test_body_at_the_depth_limit_passes_and_one_deeper_is_refused() -> None:
    """JSON_DEPTH_MAX levels pass; one more is refused with rule json.depth."""
    check_body(b"[" * JSON_DEPTH_MAX + b"]" * JSON_DEPTH_MAX)
    with pytest.raises(JsonTooDeep) as caught:
        check_body(b"[" * (JSON_DEPTH_MAX + 1) + b"]" * (JSON_DEPTH_MAX + 1))
    assert "json.depth" == caught.value.rule


def test_body_over_the_size_limit_is_refused() -> None:
    """A body one byte over the limit is refused with rule body.size."""
    with pytest.raises(BodyTooLarge) as caught:
        check_body(b"{}" + b" " * 9, bytes_max=10)
    assert "body.size" == caught.value.rule


_SERVER_IMPORTS = """
import sys
import eth_account  # py_ecc would raise the limit to 100,000 here
import coffer.cli, coffer.web.console.serve, coffer.cold.service, coffer.mpc.service.server
import coffer.mpc.ecdsa_service.server, coffer.mpc.ecdsa_service.coordinator
from coffer.chain.ethereum import EmbeddedEthereum
EmbeddedEthereum()  # imports py-evm, which raises it too
print(sys.getrecursionlimit())
"""


def test_server_processes_keep_the_default_recursion_limit() -> None:
    """After importing what `coffer serve`, signers and co-signers import (the Ethereum stack included), the
    interpreter's recursion limit is still its default."""
    output = subprocess.run([sys.executable, "-c", _SERVER_IMPORTS], capture_output=True, text=True, check=True,
                            timeout=120)
    assert RECURSION_LIMIT == int(output.stdout.split()[-1])
