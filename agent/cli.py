"""The ``voiceagent`` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
import textwrap
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from agent.config import ConfigError, Settings, load_settings
from agent.logs import configure_logging


def _help(name: str) -> str:
    field = Settings.model_fields[name]
    env = f"VOICEAGENT_{name.upper()}"
    return f"{field.description} [env {env}; default {field.default}]"


def _unflagged(flagged: set[str]) -> str:
    """The settings that have no option, so that --help still explains every setting."""
    lines = ["settings without an option (environment variable, or TOML key in lower case):"]
    for name, field in Settings.model_fields.items():
        if name in flagged:
            continue
        default = field.get_default(call_default_factory=True)
        lines.append(f"  VOICEAGENT_{name.upper()}")
        lines += textwrap.wrap(
            f"{field.description} [default {default}]",
            72,
            initial_indent=" " * 6,
            subsequent_indent=" " * 6,
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with every option explained."""
    parser = argparse.ArgumentParser(
        prog="voiceagent",
        description="VoiceAgent: a SIP/RTP voice agent that answers patients' calls and "
        "does the front-desk intake.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="answer SIP calls from a trunk or SIP peer",
        description=textwrap.fill(
            "Listen for SIP INVITEs (UDP and TCP) and answer calls. Every option can also be "
            "set by an environment variable or in a TOML file given with --config.",
            78,
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file with settings "
        "(keys as the option names with underscores) [env VOICEAGENT_CONFIG]",
    )
    serve.add_argument("--sip-host", metavar="IP", help=_help("sip_host"))
    serve.add_argument("--sip-port", metavar="PORT", type=int, help=_help("sip_port"))
    serve.add_argument("--rtp-ports", metavar="LOW-HIGH", help=_help("rtp_ports"))
    serve.add_argument("--http-port", metavar="PORT", type=int, help=_help("http_port"))
    serve.add_argument("--public-address", metavar="IP", help=_help("public_address"))
    serve.add_argument(
        "--max-call-seconds", metavar="S", type=float, help=_help("max_call_seconds")
    )
    serve.add_argument(
        "--answer-delay-seconds", metavar="S", type=float, help=_help("answer_delay_seconds")
    )
    serve.add_argument("--log-level", metavar="LEVEL", help=_help("log_level"))
    serve.epilog = _unflagged(set(vars(serve.parse_args([]))))  # every dest, as parsed
    demo = commands.add_parser(
        "demo",
        help="start the server on loopback and let a simulated patient call it",
        description="Run a complete intake call on this machine: the server on 127.0.0.1 "
        "with the embedded providers, and a simulated patient (espeak-ng voice) following "
        "a script. Prints the conversation live and the final record as JSON.",
    )
    demo.add_argument(
        "--script", metavar="FILE", help="persona YAML (default: the built-in demo patient)"
    )
    demo.add_argument(
        "--data-dir", metavar="DIR", help="records directory (default: a new temporary directory)"
    )
    call = commands.add_parser(
        "call",
        help="call any SIP URI as a simulated patient following a script",
        description="Place a call to SIP_URI with our SIP/RTP stack and play the persona's "
        "turns. Prints the Call-ID. Exits non-zero when the record in --data-dir does not "
        "meet the script's expect: block.",
    )
    call.add_argument("uri", metavar="SIP_URI", help="for example sip:intake@127.0.0.1:5060")
    call.add_argument("--script", metavar="FILE", required=True, help="persona YAML")
    call.add_argument(
        "--data-dir",
        metavar="DIR",
        default="voiceagent-data",
        help="the answering server's data directory, to check the record",
    )
    records = commands.add_parser("records", help="read the intake records store")
    records.add_argument(
        "--data-dir",
        metavar="DIR",
        default="voiceagent-data",
        help="the server's data directory [env VOICEAGENT_DATA_DIR]",
    )
    rec_cmds = records.add_subparsers(dest="records_command", required=True, metavar="ACTION")
    rec_list = rec_cmds.add_parser("list", help="one line per call, newest first")
    rec_list.add_argument("--limit", type=int, default=50)
    show = rec_cmds.add_parser("show", help="one call's record")
    show.add_argument("call_id", metavar="CALL_ID")
    show.add_argument("--json", action="store_true", help="the whole record as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``voiceagent`` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "records":
        from agent.records_cli import run_records

        return run_records(args)
    return _patient(args)


def _patient(args: argparse.Namespace) -> int:
    from agent.demo import DEFAULT_PERSONA, run_call, run_demo, temp_data_dir
    from agent.errors import AgentError
    from agent.persona import Persona

    try:
        persona = Persona.load(args.script or DEFAULT_PERSONA)
    except AgentError as exc:
        print(f"voiceagent: {exc}", file=sys.stderr)
        return 2
    if args.command == "call":
        configure_logging("warning")
        return _run(run_call(persona, args.uri, Path(args.data_dir)))
    from sip.transport import free_loopback_port

    port = free_loopback_port()
    try:
        settings = load_settings(
            {
                "sip_host": "127.0.0.1",
                "sip_port": port,
                "rtp_ports": "30000-30999",
                "data_dir": args.data_dir or temp_data_dir(),
                "log_level": "warning",
                "clinic_name": "Maple Street Clinic",
                "http_port": 0,  # no HTTP server for the demo
            }
        )
    except ConfigError as exc:
        print(f"voiceagent: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    return _run(run_demo(persona, settings))


def _run(coro: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def _serve(args: argparse.Namespace) -> int:
    overrides = {
        "sip_host": args.sip_host,
        "sip_port": args.sip_port,
        "rtp_ports": args.rtp_ports,
        "http_port": args.http_port,
        "public_address": args.public_address,
        "max_call_seconds": args.max_call_seconds,
        "answer_delay_seconds": args.answer_delay_seconds,
        "log_level": args.log_level,
    }
    try:
        settings = load_settings(overrides, args.config)
    except ConfigError as exc:
        print(f"voiceagent: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_redaction)
    from agent.runtime import Server

    async def run() -> int:
        server = Server(settings)
        try:
            await server.start()
        except OSError as exc:
            # uvloop raises its own OSError without errno, chained to the socket's one.
            cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
            print(
                f"voiceagent: cannot listen on {settings.sip_host}:{settings.sip_port}: "
                f"{exc.strerror or cause.strerror or exc}",
                file=sys.stderr,
            )
            return 1
        await server.run_until_stopped()
        return 0

    try:
        import uvloop

        return uvloop.run(run())
    except ImportError:
        return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
