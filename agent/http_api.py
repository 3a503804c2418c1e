"""Health, metrics and the admin API over HTTP: FastAPI under uvicorn, in the server's loop.

Routes:

* ``/health`` (summary), ``/health/live`` (the process answers), ``/health/ready`` (503
  while draining for shutdown or while a required dependency is down: a load balancer or
  Kubernetes stops sending calls), ``/health/detailed`` (each dependency);
* ``/metrics``: the Prometheus text format of `agent.metrics.REGISTRY`;
* ``/api/calls`` (calls in progress: identifiers, state, times; never the caller's number)
  and ``/api/intakes`` (records: a list of summaries, and one whole record by Call-ID),
  behind the ``X-API-Key`` header, compared with `hmac.compare_digest` (constant time). With
  no ``api_key`` configured the admin API refuses every request.
* ``/docs`` and ``/openapi.json``: the OpenAPI description.

This module is an asyncio shell (STYLE rule 2): uvicorn's `Server.serve` runs as a task of
the server's own loop. uvicorn's own signal capture is turned off: SIGTERM belongs to the
runtime, which drains calls before anything stops (`agent.runtime`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import socket
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Protocol

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from agent.metrics import HTTP_REQUESTS, REGISTRY
from agent.record import IntakeRecord


@dataclass(frozen=True, slots=True)
class Dependency:
    """One thing the server needs, as /health/detailed shows it."""

    name: str
    ok: bool
    required: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CallInfo:
    """One call in progress, as /api/calls shows it (no PHI)."""

    call_id: str
    state: str
    duration_s: float
    phase: str | None
    codec: str | None


class HealthSource(Protocol):
    """What the HTTP API reads from the running server."""

    @property
    def draining(self) -> bool:
        """Whether the server is draining for shutdown."""

    def dependencies(self) -> Sequence[Dependency]:
        """The state of each dependency, now."""

    def active_calls(self) -> Sequence[CallInfo]:
        """The calls in progress."""

    def list_intakes(self, limit: int) -> Sequence[IntakeRecord]:
        """The newest records (blocking: called in a worker thread)."""

    def get_intake(self, call_id: str) -> IntakeRecord | None:
        """One record (blocking: called in a worker thread)."""


def readiness(source: HealthSource) -> tuple[bool, list[str]]:
    """Ready, and the reasons when not: draining, or a required dependency down."""
    reasons = ["draining"] if source.draining else []
    reasons += [f"{d.name} down" for d in source.dependencies() if d.required and not d.ok]
    return not reasons, reasons


_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False)


class _CountRequests(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")  # the template: no Call-ID in labels
        HTTP_REQUESTS.labels(template, str(response.status_code)).inc()
        return response


def build_app(source: HealthSource, api_key: str | None, version: str = "0.1.0") -> FastAPI:
    """The FastAPI application over ``source``."""
    app = FastAPI(
        title="VoiceAgent",
        version=version,
        description="Health, Prometheus metrics and the admin API of a VoiceAgent server.",
    )
    app.add_middleware(_CountRequests)

    def require_key(given: Annotated[str | None, Depends(_KEY_HEADER)]) -> None:
        if api_key is None:
            raise HTTPException(401, "the admin API is disabled: no api_key is configured")
        if given is None or not hmac.compare_digest(given.encode(), api_key.encode()):
            raise HTTPException(401, "missing or wrong X-API-Key")

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, Any]:
        """Overall status: ok, draining or degraded (a required dependency is down)."""
        ready, reasons = readiness(source)
        status = "ok" if ready else "draining" if source.draining else "degraded"
        return {"status": status, "version": version, "active_calls": len(source.active_calls())}

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, bool]:
        """Liveness: the process and its event loop answer."""
        return {"live": True}

    @app.get("/health/ready", tags=["health"], responses={503: {"description": "not ready"}})
    async def ready() -> JSONResponse:
        """Readiness: false (503) while draining or while a required dependency is down."""
        ok, reasons = readiness(source)
        return JSONResponse({"ready": ok, "reasons": reasons}, status_code=200 if ok else 503)

    @app.get("/health/detailed", tags=["health"])
    async def detailed() -> JSONResponse:
        """Each dependency: whether it is up, whether calls need it, and a detail."""
        ok, reasons = readiness(source)
        body = {
            "ready": ok,
            "draining": source.draining,
            "reasons": reasons,
            "dependencies": [asdict(d) for d in source.dependencies()],
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["metrics"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus text exposition format (collected on the loop: it reads live calls)."""
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/calls", tags=["admin"], dependencies=[Depends(require_key)])
    async def calls() -> list[dict[str, Any]]:
        """Calls in progress (identifiers and state only)."""
        return [asdict(c) for c in source.active_calls()]

    @app.get("/api/intakes", tags=["admin"], dependencies=[Depends(require_key)])
    async def intakes(limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict[str, Any]]:
        """The newest intake records, as summaries (fetch one for its content)."""
        records = await asyncio.to_thread(source.list_intakes, limit)
        return [
            {
                **r.safe_summary(),
                "started_at": r.started_at.isoformat(),
                "ended_at": r.ended_at.isoformat() if r.ended_at else None,
            }
            for r in records
        ]

    @app.get(
        "/api/intakes/{call_id}",
        tags=["admin"],
        dependencies=[Depends(require_key)],
        responses={404: {"description": "no such record"}},
    )
    async def intake(call_id: str) -> dict[str, Any]:
        """One whole intake record (PHI: for staff with the key)."""
        record = await asyncio.to_thread(source.get_intake, call_id)
        if record is None:
            raise HTTPException(404, "no record for this Call-ID")
        return record.model_dump(mode="json")

    return app


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal capture: the runtime owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    """The FastAPI app served by uvicorn as a task of the running loop."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
        )
        self._server = _QuietServer(config)
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    async def start(self) -> None:
        """Bind the port, then serve as a task until `aclose`.

        Raises:
            OSError: the port cannot be bound.
        """
        config = self._server.config
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((config.host, config.port))
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]))
        for _ in range(500):  # bounded: uvicorn starts in a few milliseconds
            if self._server.started or self._task.done():
                break
            await asyncio.sleep(0.01)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._socket is None:
            return int(self._server.config.port)
        return int(self._socket.getsockname()[1])

    async def aclose(self) -> None:
        """Stop serving (open connections are closed)."""
        if self._task is None:
            return
        self._server.should_exit = True
        try:
            async with asyncio.timeout(5.0):
                await self._task
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
