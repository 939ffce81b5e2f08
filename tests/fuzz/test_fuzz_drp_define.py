"""dr-provision: the ``define`` output a provider prints, JSON bodies and the HTTP
request parser of the provider server (raw bytes over a socket)."""

from __future__ import annotations

import contextlib
import logging
import socket

import anyio
import anyio.abc
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from support.fuzzing import fuzz_settings, ran
from support.fuzzing_json import DEEP, json_text, json_values

from plugwire.core.errors import ProtocolError
from plugwire.http.drp.command import parse_definition
from plugwire.http.messages import Request, Response, decode_json
from plugwire.http.server import HttpServer

pytestmark = pytest.mark.drp

definitions = st.fixed_dictionaries(
    {},
    optional={
        "Name": st.one_of(st.text(max_size=10), json_values),
        "Version": st.one_of(st.text(max_size=10), json_values),
        "PluginVersion": st.one_of(st.integers(-5, 5), json_values),
        "AvailableActions": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "Command": st.one_of(st.sampled_from(["a", "b", ""]), json_values),
                        "Model": st.one_of(st.sampled_from(["machines", ""]), json_values),
                        "RequiredParams": st.one_of(st.lists(st.text(max_size=5)), json_values),
                    },
                ),
                max_size=3,
            ),
            json_values,
        ),
        "RequiredParams": json_values,
        "Parameters": json_values,
        "StoreObjects": json_values,
        "Content": json_values,
    },
)


@fuzz_settings(4)
@given(st.one_of(json_text(definitions), json_text()))
@example(DEEP)  # RecursionError escaped before the fix
@example('{"Name": "x", "PluginVersion": 1, "AvailableActions": [' + DEEP + "]}")
@example("NaN")
@example('{"Name":"x","PluginVersion":1e999}')
def test_define_output_parses_or_raises_protocol_error(out: str) -> None:
    ran("drp define output")
    try:
        definition = parse_definition(out, peer="fuzz")
    except ProtocolError as exc:
        assert exc.step == "define" and exc.peer == "fuzz"
        return
    assert definition.name and definition.plugin_version >= 1


@fuzz_settings(2)
@given(st.one_of(json_text().map(str.encode), st.binary(max_size=100)))
@example(DEEP.encode())  # RecursionError escaped before the fix
def test_json_bodies_decode_or_raise_protocol_error(body: bytes) -> None:
    ran("http json body")
    with contextlib.suppress(ProtocolError):
        decode_json(body, peer="fuzz", step="body")


async def _serve_raw(data: bytes) -> bytes:
    async def handler(request: Request) -> Response:
        return Response.json({"path": request.path, "body": len(request.body)})

    server = HttpServer(handler, name="fuzz")
    a, b = socket.socketpair()
    # UNIXSocketStream: what the server's own unix listener hands it
    sa = await anyio.abc.UNIXSocketStream.from_socket(a)
    raw = await anyio.abc.UNIXSocketStream.from_socket(b)
    out = bytearray()
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.handle_connection, sa)
        with contextlib.suppress(anyio.BrokenResourceError, OSError):
            await raw.send(data)
            await raw.send_eof()
        with (
            anyio.fail_after(5),
            contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, OSError),
        ):
            while True:
                out += await raw.receive()
    await raw.aclose()
    return bytes(out)


METHODS = st.sampled_from([b"GET", b"POST", b"PUT", b"G\x00T", b""])
requests = st.builds(
    lambda method, target, headers, body: (
        method
        + b" "
        + target
        + b" HTTP/1.1\r\n"
        + b"".join(k + b": " + v + b"\r\n" for k, v in headers)
        + b"\r\n"
        + body
    ),
    METHODS,
    st.sampled_from([b"/", b"/api-plugin/v4/action", b"*", b"/%00", b"/" + b"a" * 17000]),
    st.lists(
        st.tuples(
            st.sampled_from([b"host", b"content-length", b"transfer-encoding", b"x", b"bad key"]),
            st.sampled_from([b"x", b"5", b"-1", b"99999999999999999999", b"chunked", b"1,2"]),
        ),
        max_size=4,
    ),
    st.binary(max_size=40),
)


@fuzz_settings(0.7)
@given(st.one_of(requests, st.binary(max_size=200)))
@example(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 99999999999999999999\r\n\r\n")
@example(b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nffffffffff\r\n")
@example(b"GET / HTTP/1.1\r\n" + b"x: y\r\n" * 20000 + b"\r\n")
def test_http_server_answers_any_request_bytes_with_a_status_or_closes(data: bytes) -> None:
    ran("http request parsing")
    crashes: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = crashes.append  # type: ignore[method-assign]
    handler.setLevel(logging.ERROR)
    logging.getLogger().addHandler(handler)
    try:
        out = anyio.run(_serve_raw, data)
    finally:
        logging.getLogger().removeHandler(handler)
    assert not crashes, [r.getMessage() for r in crashes]
    if out:
        assert out.startswith(b"HTTP/1.1 "), out[:80]
        status = int(out[9:12])
        assert status in (200, 400, 405, 413, 414, 431, 501, 505), out[:80]
