"""JSON-RPC transport as Bitcoin Core's httprpc.cpp defines it: versions, batches, notifications, HTTP."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from coffer.chain.regtest import RegtestNode, RpcDispatcher, RpcServer
from coffer.chain.regtest.jsonrpc import RpcFault, execute_http
from coffer.chain.regtest.server import WorkLimits
from tests.chain.rpchelp import AUTH, RawRpc, post


class _Calls:
    """The dispatcher's side of the contract: a result, an RPC error, or an unknown method."""

    def __init__(self) -> None:
        self.called: list[str] = []

    def call(self, method: object, params: object) -> object:
        self.called.append(str(method))
        if method == "getblockcount":
            return 0
        if method == "fail":
            raise RpcFault(-8, "Block height out of range")
        raise RpcFault(-32601, "Method not found")


def _run(body: object) -> tuple[int, object, _Calls]:
    calls = _Calls()
    status, text = execute_http(calls, json.dumps(body).encode() if not isinstance(body, bytes) else body)
    return status, (json.loads(text) if text else None), calls


def test_v1_success_carries_result_error_and_id() -> None:
    """A 1.0/1.1 success has "result", "error": null and "id", in Core's order, with HTTP 200."""
    status, reply, _calls = _run({"id": 7, "method": "getblockcount"})
    assert (200, {"result": 0, "error": None, "id": 7}) == (status, reply)
    assert ["result", "error", "id"] == list(reply)  # type: ignore[arg-type]


def test_v2_success_omits_error() -> None:
    """A 2.0 success has "jsonrpc", "result" and "id" only: no "error" key (Core 28 and later)."""
    status, reply, _calls = _run({"jsonrpc": "2.0", "id": 7, "method": "getblockcount"})
    assert (200, {"jsonrpc": "2.0", "result": 0, "id": 7}) == (status, reply)


def test_v2_error_omits_result_with_http_200() -> None:
    """A 2.0 error has no "result" key and still answers HTTP 200."""
    status, reply, _calls = _run({"jsonrpc": "2.0", "id": 1, "method": "fail"})
    assert (200, {"jsonrpc": "2.0", "error": {"code": -8, "message": "Block height out of range"}, "id": 1}) == (
        status, reply)


@pytest.mark.parametrize(("method", "status_expected"), [("fail", 500), ("nosuch", 404)])
def test_v1_errors_use_http_status(method: str, status_expected: int) -> None:
    """A 1.0 error answers HTTP 500, or 404 for an unknown method, with "result": null."""
    status, reply, _calls = _run({"jsonrpc": "1.0", "id": 1, "method": method})
    assert status_expected == status
    assert (None, 1) == (reply["result"], reply["id"])  # type: ignore[index]


@pytest.mark.parametrize("body", [b"", b"this is bad"])
def test_parse_error_has_null_id(body: bytes) -> None:
    """An unparsable body gets -32700 "Parse error" with HTTP 500 and "id": null."""
    status, reply, _calls = _run(body)
    assert (500, {"result": None, "error": {"code": -32700, "message": "Parse error"}, "id": None}) == (status, reply)


def test_top_level_scalar_is_a_parse_error() -> None:
    """A JSON body that is neither object nor array gets -32700 "Top-level object parse error"."""
    status, reply, _calls = _run(5)
    assert (500, -32700, "Top-level object parse error") == (status, reply["error"]["code"],  # type: ignore[index]
                                                             reply["error"]["message"])  # type: ignore[index]


@pytest.mark.parametrize(("version", "message"), [(2, "jsonrpc field must be a string"),
                                                  ("3.0", "JSON-RPC version not supported")])
def test_bad_jsonrpc_value_is_http_400(version: object, message: str) -> None:
    """"jsonrpc" that is not a string, or not "1.0"/"2.0", gets -32600 with HTTP 400 and is not run."""
    status, reply, calls = _run({"jsonrpc": version, "method": "getblockcount"})
    assert (400, {"result": None, "error": {"code": -32600, "message": message}}) == (status, reply)
    assert [] == calls.called


def test_v2_notification_gets_204_even_when_it_fails() -> None:
    """A 2.0 request without "id" runs and gets 204 and no body, whether it succeeds or fails."""
    for method in ("getblockcount", "fail"):
        status, reply, calls = _run({"jsonrpc": "2.0", "method": method})
        assert (204, None, [method]) == (status, reply, calls.called)


def test_v2_null_id_is_not_a_notification() -> None:
    """"id": null is an id: the 2.0 request gets a reply."""
    status, reply, _calls = _run({"jsonrpc": "2.0", "id": None, "method": "getblockcount"})
    assert (200, {"jsonrpc": "2.0", "result": 0, "id": None}) == (status, reply)


def test_batch_mixes_versions_and_drops_notifications() -> None:
    """A batch answers 200 with one reply per non-notification, each shaped by its own version."""
    status, reply, _calls = _run([
        {"jsonrpc": "2.0", "method": "getblockcount"},
        {"jsonrpc": "2.0", "id": 2, "method": "nosuch"},
        {"id": 3, "method": "getblockcount"},
        {"jsonrpc": "2.0", "id": 4, "pizza": "sausage"},
    ])
    assert 200 == status
    assert [{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": 2},
            {"result": 0, "error": None, "id": 3},
            {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Missing method"}, "id": 4}] == reply


def test_batch_of_only_notifications_gets_204() -> None:
    """A non-empty batch of 2.0 notifications only gets 204 and no body; an empty batch gets []."""
    assert 204 == _run([{"jsonrpc": "2.0", "method": "getblockcount"}])[0]
    assert (200, []) == _run([])[:2]


def test_params_must_be_array_or_object() -> None:
    """"params" that is a scalar gets -32600 "Params must be an array or object"."""
    status, reply, _calls = _run({"id": 1, "method": "getblockcount", "params": 5})
    assert (400, "Params must be an array or object") == (status, reply["error"]["message"])  # type: ignore[index]


def test_reply_is_compact_json_with_newline(tmp_path: Path) -> None:
    """The wire text is compact (no spaces), ends with a newline, and amounts keep 8 decimals."""
    calls = _Calls()
    status, text = execute_http(calls, b'{"id":1,"method":"getblockcount"}')
    assert (200, '{"result":0,"error":null,"id":1}') == (status, text)




def _auth_header(auth: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()


def test_http_reply_bytes(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """Over HTTP a reply is compact JSON plus "\\n" with Content-Type application/json."""
    server = served[1]
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    connection.request("POST", "/", b'{"jsonrpc":"2.0","id":1,"method":"getblockcount"}',
                       {"Authorization": _auth_header(AUTH)})
    response = connection.getresponse()
    assert (200, "application/json", b'{"jsonrpc":"2.0","result":110,"id":1}\n') == (
        response.status, response.getheader("Content-Type"), response.read())


def test_chunked_request_body_is_read(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """A request sent with Transfer-Encoding: chunked is read whole and answered."""
    server = served[1]
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    body = [b'{"jsonrpc":"2.0",', b'"id":5,"method":', b'"getblockcount"}']
    connection.request("POST", "/", iter(body), {"Authorization": _auth_header(AUTH)}, encode_chunked=True)
    response = connection.getresponse()
    assert (200, {"jsonrpc": "2.0", "result": 110, "id": 5}) == (response.status, json.loads(response.read()))


def test_wrong_password_is_401_with_challenge(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """A wrong password gets 401, an empty body and a Basic challenge."""
    server = served[1]
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    connection.request("POST", "/", b"{}", {"Authorization": _auth_header((AUTH[0], "wrong"))})
    response = connection.getresponse()
    assert (401, b"", 'Basic realm="jsonrpc"') == (response.status, response.read(),
                                                  response.getheader("WWW-Authenticate"))


def test_cookie_auth(node: RegtestNode, tmp_path: Path) -> None:
    """Without a user and password the server writes a __cookie__ file (mode 600) that authenticates."""
    server = RpcServer(RpcDispatcher(node), port=0, cookie_dir=tmp_path).start()
    try:
        cookie = (tmp_path / ".cookie").read_text()
        user, _sep, password = cookie.partition(":")
        status, body = post(server.url, b'{"id":1,"method":"getblockcount"}', (user, password))
        assert ("__cookie__", 0o600, 200) == (user, (tmp_path / ".cookie").stat().st_mode & 0o777, status)
    finally:
        server.close()
    assert not (tmp_path / ".cookie").exists()


def test_work_queue_full_is_503(node: RegtestNode) -> None:
    """With -rpcthreads=1 -rpcworkqueue=1 a third concurrent request gets 503 "Work queue depth exceeded"."""
    server = RpcServer(RpcDispatcher(node), port=0, rpcuser=AUTH[0], rpcpassword=AUTH[1],
                       limits=WorkLimits(threads=1, queue_depth=1)).start()
    statuses: list[int] = []
    body = json.dumps({"id": 1, "method": "waitfornewblock", "params": [1500]}).encode()
    try:
        threads = [threading.Thread(target=lambda: statuses.append(post(server.url, body, AUTH)[0]))
                   for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.close()
    assert [200, 200, 503] == sorted(statuses)


_RESET_SCRIPT = """
import socket, struct, sys, time
from coffer.chain.regtest import RegtestNode, RpcDispatcher, RpcServer
node = RegtestNode(sys.argv[1])
server = RpcServer(RpcDispatcher(node), port=0, rpcuser="u", rpcpassword="p").start()
for _ in range(5):
    sock = socket.create_connection((server.host, server.port))
    sock.sendall(b"POST / HTTP/1.1\\r\\nContent-Length: 1000\\r\\nAuthorization: Basic dTpw\\r\\n\\r\\n{")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
time.sleep(0.5)
server.close(); node.close()
"""


def test_client_reset_leaves_stderr_quiet(tmp_path: Path) -> None:
    """Clients that reset their connection mid-request leave nothing on the server's stderr."""
    result = subprocess.run([sys.executable, "-c", _RESET_SCRIPT, str(tmp_path / "node")], capture_output=True,
                            timeout=120, check=False)
    assert (0, b"") == (result.returncode, result.stderr)


def test_non_loopback_bind_refused(node: RegtestNode) -> None:
    """The server refuses to bind a non-loopback address."""
    with pytest.raises(ValueError, match="loopback"):
        RpcServer(RpcDispatcher(node), port=0, host="0.0.0.0", rpcuser="u", rpcpassword="p")  # noqa: S104


def test_get_is_405(served: tuple[RegtestNode, RpcServer, RawRpc]) -> None:
    """A GET is refused with 405 as Core does."""
    server = served[1]
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 405")
