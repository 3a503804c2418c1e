"""A loopback OpenAI chat-completions server, with a scripted "model", for tests and benchmarks.

It speaks the HTTP/1.1 the official ``openai`` client speaks (keep-alive, JSON bodies) at
``http://127.0.0.1:PORT/v1``: ``POST /v1/chat/completions``, non-streaming (one
``chat.completion`` object) and streaming (``text/event-stream`` of ``chat.completion.chunk``
events in chunked transfer encoding, ending with ``data: [DONE]``), with ``response_format``
``json_schema`` and ``tools`` / ``tool_calls``. The API key is checked (401 otherwise).

The "model" is a test double, and says so (`tests.cloud.scripted_model`): it reads the
caller's words with *our own* rule-based extractors and answers in the requested JSON schema or
with a tool call. It is therefore right exactly when the rules are; what the tests prove is the
plumbing around it (schemas, tools, streaming, budgets, failover) and that the rules check
every proposal, for which `forced` replies give it wrong answers on purpose.

`Behaviour` is mutable while the server runs (tests flip it mid-call): time to first token
and the delay between tokens (``ttft_s=0.5`` reproduces a hosted GPT-4-class model for the
turn-latency benchmark), error answers (500, 429) from the n-th request on, and a dropped
connection after a number of streamed chunks. Everything listens on 127.0.0.1 only; every wait
is bounded. Run it in a thread of its own (`OpenAiServer.running`), so that its timing does not
depend on the load of the test's event loop, or on its loop (`start`/`stop`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.cloud.scripted_model import Reply, scripted_reply

LOOPBACK = "127.0.0.1"
READ_TIMEOUT_S = 30.0
TOKEN_CHARS = 4  # characters per streamed token


@dataclass
class Behaviour:
    """How the server behaves; change it at any time.

    Attributes:
        ttft_s: delay before the first token (streaming) or the whole answer.
        inter_token_s: delay between streamed tokens.
        fail_status: answer this HTTP status (500, 429, ...) ...
        fail_from_request: ... from this request on (1-based; 1 = every request).
        disconnect_after_chunks: drop the connection after this many streamed chunks.
        forced: canned replies by schema name (``"insurance_member_id"``), wrong on purpose.
        acknowledgements: let the scripted model speak a short acknowledgement.
    """

    ttft_s: float = 0.0
    inter_token_s: float = 0.0
    fail_status: int | None = None
    fail_from_request: int = 1
    disconnect_after_chunks: int | None = None
    forced: dict[str, Reply] = field(default_factory=dict)
    acknowledgements: bool = True


@dataclass(frozen=True, slots=True)
class Seen:
    """One request as received (tests assert on these; PHI stays in the test process)."""

    schema: str | None
    tools: tuple[str, ...]
    stream: bool
    user: str
    status: int


class OpenAiServer:
    """The server; ``base_url`` is what the client is pointed at."""

    def __init__(self, api_key: str = "test-key", behaviour: Behaviour | None = None) -> None:
        self.api_key = api_key
        self.behaviour = behaviour or Behaviour()
        self.seen: list[Seen] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def base_url(self) -> str:
        """The ``base_url`` for `openai.AsyncOpenAI`."""
        return f"http://{LOOPBACK}:{self.port}/v1"

    async def start(self) -> None:
        """Listen on an ephemeral loopback port."""
        self._server = await asyncio.start_server(self._connection, LOOPBACK, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close the listener and every open connection."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await asyncio.wait_for(self._server.wait_closed(), 5.0)

    @classmethod
    @contextlib.contextmanager
    def running(
        cls, api_key: str = "test-key", behaviour: Behaviour | None = None
    ) -> Iterator[OpenAiServer]:
        """The server on an event loop in a thread of its own, until the block ends."""
        server = cls(api_key, behaviour)
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(server.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(server.stop())
            loop.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        if not ready.wait(10.0):
            raise RuntimeError("the loopback OpenAI server did not start")
        try:
            yield server
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10.0)

    def requests_for(self, schema: str) -> list[Seen]:
        """The requests whose response format was ``schema``."""
        return [s for s in list(self.seen) if s.schema == schema]

    # ----------------------------------------------------------------- HTTP
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip()
                    for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)
                }
                length = int(headers.get("content-length", "0"))
                body = await asyncio.wait_for(reader.readexactly(length), READ_TIMEOUT_S)
                if not await self._handle(method, path, headers, body, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, ValueError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _handle(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Answer one request; False when the connection must close."""
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return await _json(
                writer, 401, _error("Incorrect API key provided", "invalid_request_error")
            )
        if method != "POST" or path.rstrip("/") != "/v1/chat/completions":
            return await _json(writer, 404, _error("Unknown request URL", "invalid_request_error"))
        request = json.loads(body)
        schema = (request.get("response_format") or {}).get("json_schema", {}).get("name")
        tools = tuple(t["function"]["name"] for t in request.get("tools") or ())
        user = next(
            (m["content"] for m in reversed(request["messages"]) if m["role"] == "user"), ""
        )
        stream = bool(request.get("stream"))
        b = self.behaviour
        number = len(self.seen) + 1
        status = (
            b.fail_status if b.fail_status is not None and number >= b.fail_from_request else 200
        )
        self.seen.append(Seen(schema, tools, stream, user, status))
        await asyncio.sleep(b.ttft_s)
        if status == 429:
            return await _json(
                writer,
                429,
                _error("Rate limit reached", "rate_limit_exceeded"),
                {"retry-after": "1"},
            )
        if status != 200:
            return await _json(writer, status, _error("The server had an error", "server_error"))
        reply = b.forced.get(schema or "") or scripted_reply(request, b.acknowledgements)
        model = str(request.get("model", "gpt-4o"))
        if not stream:
            return await _json(writer, 200, _completion(model, reply))
        usage = None
        if (request.get("stream_options") or {}).get("include_usage"):
            prompt = sum(len(str(m.get("content", "")).split()) for m in request["messages"])
            usage = {"prompt_tokens": prompt}
        return await self._stream(writer, model, reply, usage)

    async def _stream(
        self,
        writer: asyncio.StreamWriter,
        model: str,
        reply: Reply,
        usage: dict[str, int] | None = None,
    ) -> bool:
        """Stream ``reply``; with ``usage`` (asked for by ``stream_options.include_usage``)
        every chunk says ``"usage": null`` and a last chunk with no choices carries the
        counts, as OpenAI's API does."""
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n\r\n"
        )
        b = self.behaviour
        sent = 0
        for delta, finish in _deltas(reply):
            if b.disconnect_after_chunks is not None and sent >= b.disconnect_after_chunks:
                writer.transport.abort()  # mid-stream, no terminating chunk: a dropped socket
                return False
            chunk = _stream_chunk(model, [{"index": 0, "delta": delta, "finish_reason": finish}])
            if usage is not None:
                chunk["usage"] = None
            _chunk(writer, f"data: {json.dumps(chunk)}\n\n".encode())
            await writer.drain()
            sent += 1
            if b.inter_token_s:
                await asyncio.sleep(b.inter_token_s)
        if usage is not None:
            counts = {**usage, "completion_tokens": sent}
            counts["total_tokens"] = counts["prompt_tokens"] + sent
            last = _stream_chunk(model, []) | {"usage": counts}
            _chunk(writer, f"data: {json.dumps(last)}\n\n".encode())
        _chunk(writer, b"data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


def _stream_chunk(model: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``chat.completion.chunk`` event's object."""
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
    }


def _chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")


async def _json(
    writer: asyncio.StreamWriter,
    status: int,
    payload: dict[str, Any],
    extra: dict[str, str] | None = None,
) -> bool:
    body = json.dumps(payload).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\ncontent-type: application/json\r\n"
    )
    head += "".join(f"{k}: {v}\r\n" for k, v in (extra or {}).items())
    writer.write(f"{head}content-length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    return True


_REASONS = {
    200: "OK",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _completion(model: str, reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    if reply.tool is not None:
        name, args = reply.tool
        message["tool_calls"] = [
            {
                "id": "call_0",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
        ]
    else:
        message["content"] = json.dumps(reply.content)
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if reply.tool else "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _pieces(text: str) -> list[str]:
    return [text[i : i + TOKEN_CHARS] for i in range(0, len(text), TOKEN_CHARS)] or [""]


def _deltas(reply: Reply) -> Iterator[tuple[dict[str, Any], str | None]]:
    """The streamed deltas of a reply, as OpenAI sends them (role first, finish last)."""
    yield {"role": "assistant", "content": ""}, None
    if reply.tool is not None:
        name, args = reply.tool
        head = {
            "index": 0,
            "id": "call_0",
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        yield {"tool_calls": [head]}, None
        for piece in _pieces(json.dumps(args)):
            yield {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}, None
        yield {}, "tool_calls"
        return
    for piece in _pieces(json.dumps(reply.content)):
        yield {"content": piece}, None
    yield {}, "stop"


# ----------------------------------------------------------------------------- standalone
async def _serve(api_key: str, behaviour: Behaviour) -> None:
    server = OpenAiServer(api_key, behaviour)
    await server.start()
    print(server.base_url, flush=True)  # the one line a benchmark script reads
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.cloud.openai_server --ttft-ms 500``: serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--api-key", default="test-key")
    parser.add_argument("--ttft-ms", type=float, default=500.0, help="time to first token")
    parser.add_argument("--inter-token-ms", type=float, default=10.0)
    args = parser.parse_args(argv)
    behaviour = Behaviour(ttft_s=args.ttft_ms / 1000, inter_token_s=args.inter_token_ms / 1000)
    asyncio.run(_serve(args.api_key, behaviour))


if __name__ == "__main__":
    main()
