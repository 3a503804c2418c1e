"""``voiceagent demo`` and ``voiceagent call``: a scripted patient calls an agent.

The demo starts the server on loopback with the embedded providers, places a call to it from
a `SimulatedPatient`, prints the conversation as it happens, and prints the final record as
JSON. ``call`` does the same against any SIP URI; the record is read from the records store
named by ``--data-dir`` when the agent there is ours.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from agent.config import Settings
from agent.patient import SimulatedPatient
from agent.persona import Persona, unmet_expectations
from agent.records import SqliteRecords
from sip.layer import Address
from sip.uri import Uri

DEFAULT_PERSONA = Path(__file__).parent / "data" / "personas" / "demo.yaml"


def _line(out: TextIO, speaker: str, text: str) -> None:
    label = {"agent": "AGENT  ", "patient": "PATIENT", "heard": "  heard"}.get(speaker, speaker)
    print(f"{label}: {text}", file=out, flush=True)


async def run_demo(persona: Persona, settings: Settings, out: TextIO = sys.stdout) -> int:
    """Serve on loopback, call ourselves, print the record; 0 when expectations hold."""
    from agent.runtime import Server

    server = Server(settings, transcript=lambda who, text: _line(out, who, text))
    await server.start()
    try:
        target = Address("udp", settings.sip_host, settings.sip_port)
        patient = SimulatedPatient(
            persona,
            f"sip:intake@{settings.sip_host}:{settings.sip_port}",
            target,
            on_line=lambda who, text: _line(out, who, text),
        )
        result = await patient.run()
        await asyncio.sleep(0.5)  # the server's final save after BYE
    finally:
        await server.aclose()
    return _report(persona, result.call_id, Path(settings.data_dir), out)


async def run_call(persona: Persona, uri: str, data_dir: Path, out: TextIO = sys.stdout) -> int:
    """Call ``uri`` with the persona; check the record when the store is readable."""
    parsed = Uri.parse(uri)
    if parsed.host is None:
        raise ValueError(f"{uri} is not a SIP URI with a host")
    host = parsed.host.strip("[]")
    target = Address("udp", host, parsed.port or 5060)
    patient = SimulatedPatient(
        persona, uri, target, on_line=lambda who, text: _line(out, who, text)
    )
    result = await patient.run()
    print(f"Call-ID: {result.call_id}", file=out)
    await asyncio.sleep(0.5)
    return _report(persona, result.call_id, data_dir, out)


def _report(persona: Persona, call_id: str, data_dir: Path, out: TextIO) -> int:
    path = data_dir / "records.sqlite3"
    if not path.exists():
        print(f"no records store at {path}: cannot check expectations", file=out)
        return 1 if persona.expect else 0
    store = SqliteRecords(path)
    try:
        record = store.get(call_id)
    finally:
        store.close()
    if record is None:
        print(f"no record for Call-ID {call_id}", file=out)
        return 1
    print(json.dumps(record.model_dump(mode="json", exclude={"transcript"}), indent=2), file=out)
    unmet = unmet_expectations(persona, record)
    if unmet:
        print(f"expectations not met: {', '.join(unmet)}", file=out)
        return 1
    print("all expectations met", file=out)
    return 0


def temp_data_dir() -> str:
    """A fresh directory for the demo's records."""
    return tempfile.mkdtemp(prefix="voiceagent-demo-")
