"""A fault-injecting HTTP/1.1 reverse proxy, for the exactly-once test.

Game clients send their telemetry events to `contract-runtime serve` through this proxy, and the
proxy makes the network misbehave on purpose so that the clients have to retry. The test then
checks that every event was stored exactly once: a retry of an event the server already stored
must not be stored again, and an event whose upload never completed must still arrive, once.

Each faultable request (a POST whose path starts with one of the fault paths) draws one mode from
a seeded random generator, so that a failing run can be replayed with the same seed:

- `drop_answer`: an answer lost after the server stored the event. The proxy forwards the whole
  request and reads the whole answer, then resets the client connection without writing a byte.
  The client cannot know that the event was stored and retries: the server must recognise the
  duplicate.
- `reset_mid_body`: a connection reset in the middle of an upload. The server receives the head
  and half of the body, then a reset; it never sees a complete body, so it must store nothing.
  The client sees a reset too and retries: that retry is the event's only delivery.
- `delay`: an answer slower than the client waits. The server answers (so it stored the event)
  but the answer is held for `delay_seconds`, longer than the client's timeout: the client gives
  up and retries, a duplicate the server must recognise.
- `pass`: the request goes through untouched.

Everything else (other methods, other paths) passes. When the upstream cannot be reached (the
server is down while it is restarted, perhaps on another port: see `FaultProxy.set_upstream`),
the client gets a 502 and retries.

Each request is forwarded on a fresh upstream connection (`Connection: close`), with a chunked
request body re-framed with `Content-Length`; the answer goes back with its status, headers and
body, re-framed with `Content-Length` when upstream sent it chunked or delimited by the end of
the connection. The client connection is kept alive unless the client or a fault closes it.

Usage as a program (runs until Ctrl-C, then prints its counts):

    python tests/fault_proxy.py --upstream 127.0.0.1:8080 --fault-path /prod/ \\
        --drop 0.1 --reset 0.1 --delay 0.05 --seed 1 --delay-seconds 6

Usage from a test:

    proxy = FaultProxy(("127.0.0.1", 8080), {"drop_answer": 0.1}, ("/prod/",), seed=1)
    proxy.start()
    ...  # the clients talk to http://127.0.0.1:{proxy.port}
    proxy.set_upstream(("127.0.0.1", 8081))  # the server was restarted on another port
    print(proxy.stats())
    proxy.stop()
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import socket
import struct
import sys
import threading
import urllib.parse
from dataclasses import dataclass, field

PASS = "pass"
DROP_ANSWER = "drop_answer"
RESET_MID_BODY = "reset_mid_body"
DELAY = "delay"
# The order in which the weights are laid on [0, 1): fixed, so a seed always means the same run.
FAULT_MODES = (DROP_ANSWER, RESET_MID_BODY, DELAY)

CHUNKED = "chunked"
# A head (request line and headers) longer than this is refused rather than buffered unbounded.
HEAD_LIMIT = 1 << 20
CONNECT_TIMEOUT = 5.0
# A server that never answers must not hold a client forever: it counts as an upstream error.
UPSTREAM_TIMEOUT = 60.0
# The partial upload sits at the server this long before the reset, so that the server is really
# in the middle of reading the body when the connection dies.
RESET_PAUSE = 0.05

log = logging.getLogger("fault_proxy")


class ProtocolError(Exception):
    """A peer sent something that is not HTTP/1.1 as this proxy understands it."""


class UpstreamError(Exception):
    """The upstream could not be reached, or did not give a complete answer."""


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    # None: no body; an int: Content-Length; CHUNKED: Transfer-Encoding: chunked.
    framing: int | str | None
    body: bytes = b""


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


# --- parsing -------------------------------------------------------------------------------------


def header_values(headers: list[tuple[str, str]], name: str) -> list[str]:
    """Every value of the header `name` (case-insensitive), in order."""
    wanted = name.lower()
    return [value for key, value in headers if key.lower() == wanted]


def header_tokens(headers: list[tuple[str, str]], name: str) -> list[str]:
    """The comma-separated tokens of a list header (Connection, Transfer-Encoding), lowercased."""
    tokens = []
    for value in header_values(headers, name):
        tokens.extend(token.strip().lower() for token in value.split(",") if token.strip())
    return tokens


def parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    """Splits a head (ending with its blank line) into its start line and its headers."""
    lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        # A space before the colon or a folded line is a smuggling vector: refuse, don't guess.
        if not colon or not name or name != name.strip():
            raise ProtocolError(f"malformed header line {line!r}")
        headers.append((name, value.strip()))
    return lines[0], headers


def body_framing(headers: list[tuple[str, str]], *, is_request: bool) -> int | str | None:
    """How the body is delimited: CHUNKED, a Content-Length, or None (no length given)."""
    codings = header_tokens(headers, "transfer-encoding")
    if codings:
        if codings[-1] == CHUNKED:
            return CHUNKED
        if is_request:
            raise ProtocolError(f"unsupported transfer coding {codings!r}")
        return None  # a response whose body runs to the end of the connection
    lengths = {value.strip() for value in header_values(headers, "content-length")}
    if not lengths:
        return None
    length = lengths.pop()
    if lengths or not length.isdigit():
        raise ProtocolError(f"bad Content-Length {header_values(headers, 'content-length')!r}")
    return int(length)


def parse_request_head(head: bytes) -> Request:
    start_line, headers = parse_head(head)
    parts = start_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ProtocolError(f"malformed request line {start_line!r}")
    method, target, version = parts
    return Request(method, target, version, headers, body_framing(headers, is_request=True))


def parse_status_line(start_line: str) -> tuple[int, str]:
    version, _, rest = start_line.partition(" ")
    status, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(status) != 3 or not status.isdigit():
        raise ProtocolError(f"malformed status line {start_line!r}")
    return int(status), reason


def request_path(target: str) -> str:
    """The path of a request target, in origin form (`/p?q`) or absolute form (`http://h/p`)."""
    if target.startswith("/"):
        return target
    return urllib.parse.urlsplit(target).path or "/"


def client_keeps_alive(request: Request) -> bool:
    tokens = header_tokens(request.headers, "connection")
    if request.version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def expects_continue(request: Request) -> bool:
    has_body = request.framing not in (None, 0)
    return has_body and "100-continue" in header_tokens(request.headers, "expect")


def has_no_body(method: str, status: int) -> bool:
    return method == "HEAD" or status in (204, 304) or 100 <= status < 200


# --- reading -------------------------------------------------------------------------------------


async def read_head(reader: asyncio.StreamReader) -> bytes | None:
    """The next head on the connection, or None if the peer closed it between messages."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as error:
            if not error.partial.strip(b"\r\n"):
                return None
            raise
        except asyncio.LimitOverrunError as error:
            raise ProtocolError("head too large") from error
        # Blank lines before a request line are allowed (RFC 9112, 2.2): skip them.
        head = head.lstrip(b"\r\n")
        if head:
            return head


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    """A chunked body, decoded; its trailers are dropped (the body is re-framed by length)."""
    chunks = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as error:
            raise ProtocolError(f"bad chunk size {size_line!r}") from error
        if size == 0:
            break
        chunks.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise ProtocolError("chunk not followed by CRLF")
    while await reader.readuntil(b"\r\n") != b"\r\n":
        pass
    return b"".join(chunks)


async def read_body(reader: asyncio.StreamReader, framing: int | str | None) -> bytes:
    if framing == CHUNKED:
        return await read_chunked(reader)
    if isinstance(framing, int):
        return await reader.readexactly(framing)
    return b""


async def read_response(reader: asyncio.StreamReader, method: str) -> Response:
    """The final answer of the upstream; interim 1xx answers (100 Continue) are skipped."""
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        start_line, headers = parse_head(head)
        status, reason = parse_status_line(start_line)
        if not 100 <= status < 200:
            break
    response = Response(status, reason, headers)
    if has_no_body(method, status):
        return response
    framing = body_framing(headers, is_request=False)
    if framing is None:
        # No length: the body ends with the connection, which we asked to be closed.
        response.body = await reader.read()
    else:
        response.body = await read_body(reader, framing)
    return response


# --- writing -------------------------------------------------------------------------------------


def render_head(start_line: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [start_line, *(f"{name}: {value}" for name, value in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def upstream_head(request: Request, content_length: int) -> bytes:
    """The head sent upstream: the client's, on a connection closed after one answer.

    Connection is hop-by-hop (it is ours to set); a chunked body is sent with its length instead,
    so the upstream never has to deal with chunk framing broken by a fault.
    """
    dropped = {"connection"}
    if request.framing == CHUNKED:
        dropped |= {"transfer-encoding", "content-length"}
    headers = [(name, value) for name, value in request.headers if name.lower() not in dropped]
    if request.framing == CHUNKED:
        headers.append(("Content-Length", str(content_length)))
    headers.append(("Connection", "close"))
    return render_head(f"{request.method} {request.target} HTTP/1.1", headers)


def client_response(response: Response, method: str, keep_alive: bool) -> bytes:
    """The answer as the client gets it: status, headers and body preserved, framed by length.

    Connection and Keep-Alive are hop-by-hop: the upstream's (`close`) is not the client's.
    """
    dropped = {"connection", "keep-alive"}
    reframe = not has_no_body(method, response.status) and (
        header_tokens(response.headers, "transfer-encoding")
        or not header_values(response.headers, "content-length")
    )
    if reframe:
        dropped |= {"transfer-encoding", "content-length"}
    headers = [(name, value) for name, value in response.headers if name.lower() not in dropped]
    if reframe:
        headers.append(("Content-Length", str(len(response.body))))
    headers.append(("Connection", "keep-alive" if keep_alive else "close"))
    head = render_head(f"HTTP/1.1 {response.status} {response.reason}".rstrip(), headers)
    return head + (b"" if has_no_body(method, response.status) else response.body)


def error_response(status: int, reason: str, message: str) -> Response:
    body = json.dumps({"message": message}).encode()
    return Response(status, reason, [("Content-Type", "application/json")], body)


def reset_connection(writer: asyncio.StreamWriter) -> None:
    """Closes the connection with a TCP reset (SO_LINGER 0) rather than an orderly FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass  # already gone: closed is all we wanted
    writer.transport.abort()


async def close_quietly(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except (OSError, asyncio.CancelledError):
        pass


# --- the proxy -----------------------------------------------------------------------------------


class FaultProxy:
    """A reverse proxy on 127.0.0.1 that injects faults into the requests it forwards."""

    def __init__(
        self,
        upstream: tuple[str, int],
        faults: dict[str, float],
        fault_paths: tuple[str, ...],
        seed: int = 0,
        delay_seconds: float = 6.0,
    ) -> None:
        unknown = set(faults) - set(FAULT_MODES)
        if unknown:
            raise ValueError(f"unknown fault modes {sorted(unknown)}; known: {FAULT_MODES}")
        if any(weight < 0 for weight in faults.values()) or sum(faults.values()) > 1 + 1e-9:
            raise ValueError(f"fault weights must be >= 0 and sum to at most 1: {faults}")
        self.faults = dict(faults)
        self.fault_paths = tuple(fault_paths)
        self.delay_seconds = delay_seconds
        self.port: int | None = None
        # Drawn only on the loop thread, in the order the request heads arrive.
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._upstream = upstream
        self._stats = {"requests": 0, "upstream_errors": 0, PASS: 0}
        self._stats.update({mode: 0 for mode in FAULT_MODES})
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._connections: set[asyncio.Task] = set()

    # -- control, from any thread --

    def start(self) -> None:
        """Listens on a free port of 127.0.0.1 (`self.port`); returns once it is listening."""
        if self._thread is not None:
            raise RuntimeError("FaultProxy already started")
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            raise RuntimeError("fault proxy failed to start") from self._startup_error

    def stop(self) -> None:
        """Stops listening, drops the open connections and waits for the loop thread to end."""
        if self._loop is not None and self._stopping is not None:
            try:
                self._loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:
                pass  # the loop has already ended
        if self._thread is not None:
            self._thread.join(timeout=10)

    def set_upstream(self, upstream: tuple[str, int]) -> None:
        """Sends the requests that arrive from now on to `upstream` (e.g. a restarted server)."""
        with self._lock:
            self._upstream = upstream

    @property
    def upstream(self) -> tuple[str, int]:
        with self._lock:
            return self._upstream

    def stats(self) -> dict[str, int]:
        """Counts: `requests` (all of them), `upstream_errors`, and per mode the faultable
        requests that drew it (`pass`, `drop_answer`, `reset_mid_body`, `delay`)."""
        with self._lock:
            return dict(self._stats)

    def _count(self, key: str) -> None:
        with self._lock:
            self._stats[key] += 1

    # -- the loop thread --

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # reported to start() if it happened before listening
            self._startup_error = error
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(
            self._serve_connection, "127.0.0.1", 0, limit=HEAD_LIMIT
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stopping.wait()
        server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await server.wait_closed()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while await self._serve_request(reader, writer):
                pass
        except (OSError, EOFError):
            pass  # the client went away (or a fault sent it away): expected, nothing to say
        except ProtocolError:
            pass  # a client that does not speak HTTP gets its connection closed
        except asyncio.CancelledError:
            pass  # stop()
        except Exception:  # a bug here must not take the other connections down with it
            log.exception("fault proxy: unexpected error on a client connection")
        finally:
            self._connections.discard(task)
            await close_quietly(writer)

    async def _serve_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Serves one request; returns whether the client connection stays open."""
        head = await read_head(reader)
        if head is None:
            return False
        try:
            request = parse_request_head(head)
        except ProtocolError:
            bad = error_response(400, "Bad Request", "bad request")
            writer.write(client_response(bad, "GET", keep_alive=False))
            await writer.drain()
            return False
        self._count("requests")
        mode = self._draw(request)
        if expects_continue(request):
            # The body is forwarded only once complete: the client must send it to us first.
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if mode == RESET_MID_BODY:
            await self._reset_mid_body(request, reader, writer)
            return False
        request.body = await read_body(reader, request.framing)
        keep_alive = client_keeps_alive(request)
        try:
            response = await self._exchange(request)
        except UpstreamError:
            self._count("upstream_errors")
            response = error_response(502, "Bad Gateway", "upstream unreachable")
            mode = PASS  # the answer is already an error: the client retries anyway
        if mode == DROP_ANSWER:
            reset_connection(writer)
            return False
        if mode == DELAY:
            await asyncio.sleep(self.delay_seconds)
        # After a delay the client has probably gone: writing then fails, and that is expected.
        writer.write(client_response(response, request.method, keep_alive))
        await writer.drain()
        return keep_alive

    def _draw(self, request: Request) -> str:
        """The request's fate; only POSTs to a fault path draw (and are counted per mode)."""
        path = request_path(request.target)
        if request.method != "POST" or not path.startswith(self.fault_paths):
            return PASS
        roll = self._rng.random()
        edge = 0.0
        mode = PASS
        for candidate in FAULT_MODES:
            edge += self.faults.get(candidate, 0.0)
            if roll < edge:
                mode = candidate
                break
        self._count(mode)
        return mode

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self.upstream
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=HEAD_LIMIT), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError) as error:
            raise UpstreamError(f"cannot connect to {host}:{port}") from error

    async def _exchange(self, request: Request) -> Response:
        """Forwards a complete request on a fresh upstream connection and reads the answer."""
        reader, writer = await self._open_upstream()
        try:
            writer.write(upstream_head(request, len(request.body)) + request.body)
            try:
                await writer.drain()
            except ConnectionError:
                pass  # the server may have answered early (413, say) and closed: read that
            return await asyncio.wait_for(read_response(reader, request.method), UPSTREAM_TIMEOUT)
        except (OSError, EOFError, TimeoutError, ProtocolError, asyncio.LimitOverrunError) as error:
            raise UpstreamError("no complete answer from upstream") from error
        finally:
            writer.transport.abort()  # one answer per connection: nothing left to say

    async def _reset_mid_body(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Sends the head and half of the body upstream, then resets both connections."""
        if request.framing == CHUNKED:
            # A chunked body's length is only known at its end: read it all, send half of it.
            body = await read_chunked(reader)
            length, partial = len(body), body[: len(body) // 2]
        else:
            length = request.framing if isinstance(request.framing, int) else 0
            partial = await reader.readexactly(length // 2)
        head = upstream_head(request, length)
        # Without a body, half of the head is what keeps the request incomplete.
        payload = head + partial if length else head[: len(head) // 2]
        try:
            upstream_reader, upstream_writer = await self._open_upstream()
        except UpstreamError:
            self._count("upstream_errors")
            reset_connection(writer)
            return
        try:
            upstream_writer.write(payload)
            await upstream_writer.drain()
            await asyncio.sleep(RESET_PAUSE)
        except OSError:
            pass  # the upstream went away on its own: it has no complete body either way
        finally:
            reset_connection(upstream_writer)
            reset_connection(writer)


# --- command line --------------------------------------------------------------------------------


def parse_address(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", type=parse_address, required=True, metavar="HOST:PORT")
    parser.add_argument(
        "--fault-path",
        action="append",
        dest="fault_paths",
        metavar="PREFIX",
        help="faults apply to POSTs whose path starts with PREFIX (repeatable; default: /)",
    )
    parser.add_argument("--drop", type=float, default=0.0, help="drop_answer probability")
    parser.add_argument("--reset", type=float, default=0.0, help="reset_mid_body probability")
    parser.add_argument("--delay", type=float, default=0.0, help="delay probability")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--delay-seconds", type=float, default=6.0)
    args = parser.parse_args(argv)
    faults = {DROP_ANSWER: args.drop, RESET_MID_BODY: args.reset, DELAY: args.delay}
    proxy = FaultProxy(
        args.upstream,
        faults,
        tuple(args.fault_paths or ["/"]),
        seed=args.seed,
        delay_seconds=args.delay_seconds,
    )
    proxy.start()
    print(f"listening on {proxy.port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()
        print(json.dumps(proxy.stats(), sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
