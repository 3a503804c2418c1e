"""Server configuration: VOICEAGENT_* environment variables and an optional TOML file.

Precedence, highest first: command-line options, environment variables, the TOML file
(``--config`` or ``VOICEAGENT_CONFIG``), defaults. Values are validated by pydantic-settings;
a bad value stops the server with one line naming the setting and what is wrong.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from agent.consult import Consult
from rtp.ports import PortRange


class ConfigError(Exception):
    """The configuration cannot be used; the message is one line for an operator."""


class Settings(BaseSettings):
    """Every setting of ``voiceagent serve``. Field descriptions become the --help text."""

    model_config = SettingsConfigDict(env_prefix="VOICEAGENT_", extra="forbid", frozen=True)

    sip_host: str = Field(
        "127.0.0.1", description="IP address to listen on for SIP over UDP and TCP."
    )
    sip_port: int = Field(5060, ge=1, le=65535, description="SIP port (UDP and TCP).")
    rtp_ports: str = Field(
        "10000-20000",
        description="RTP port range LOW-HIGH; each call takes an even port and the next one.",
    )
    http_port: int = Field(
        8080,
        ge=0,
        le=65535,
        description="HTTP port for health, metrics and the admin API; 0: no HTTP server.",
    )
    public_address: str | None = Field(
        None,
        description="Address put in Contact and SDP when it differs from --sip-host "
        "(the address the trunk reaches us on).",
    )
    max_call_seconds: float = Field(
        3600.0, gt=0, description="Hang up with BYE after a call lasts this long."
    )
    # At most a minute: RFC 3261 §13.3.1.1 wants a fresh provisional every minute to keep
    # stateful proxies from cancelling, and we send 180 only once.
    answer_delay_seconds: float = Field(
        0.0,
        ge=0,
        le=60,
        description="Ring (180 Ringing) for this many seconds before answering; 0 answers at "
        "once. A caller can still CANCEL while it rings.",
    )
    sip_t1: float = Field(0.5, gt=0, description="RFC 3261 T1 (round-trip estimate), seconds.")
    sip_t2: float = Field(4.0, gt=0, description="RFC 3261 T2 (max retransmit interval), seconds.")
    sip_t4: float = Field(5.0, gt=0, description="RFC 3261 T4 (max message lifetime), seconds.")
    force_rport: bool = Field(
        False,
        description="Send UDP responses to the source port even without rport (for NATed trunks).",
    )
    sip_auth_realm: str | None = Field(
        None,
        description="Digest realm; when set with sip_auth_users, INVITE and REGISTER "
        "are challenged (RFC 7616).",
    )
    sip_auth_users: dict[str, str] = Field(
        default_factory=dict, description="Digest users as a JSON/TOML table {user: password}."
    )
    log_level: str = Field("info", description="Log level: debug, info, warning or error.")
    app: str = Field(
        "intake",
        description="What answered calls get: 'intake' (the patient intake conversation) or "
        "'echo' (a greeting, then each utterance played back: a media path check).",
    )
    data_dir: str = Field(
        "voiceagent-data",
        description="Directory for the records database (intakes and the callers' audio).",
    )
    clinic_name: str = Field("the clinic", description="Clinic name the agent says.")
    transfer_target: str | None = Field(
        None,
        description="SIP URI of staff for 'talk to a person' and urgent transfers "
        "(REFER); without it the agent takes a callback message.",
    )
    calendar_file: str | None = Field(
        None, description="YAML file of weekly appointment times (default: the demo calendar)."
    )
    # --- call admission (agent/admission.py)
    max_calls: int = Field(
        0,
        ge=0,
        description="Answer at most this many calls at once; more are refused with 503 "
        "(0: no fixed cap). Size it from bench/RESULTS.md for the host's cores.",
    )
    overload_late_share: float = Field(
        0.2,
        gt=0,
        le=1,
        description="Refuse new calls (503) for 10 s when more than this share of the media "
        "clock's ticks in the last 5 s ran over 5 ms late or were skipped.",
    )

    # ----------------------------------------------------------------- state and email
    # (issue 6 items 1-2: agent/redis_store.py, agent/sealing.py, agent/mailer.py)
    redis_url: str | None = Field(
        None,
        description="Redis URL (redis://127.0.0.1:6379/0) for call state shared across "
        "instances; without it state is kept in memory.",
    )
    redis_prefix: str = Field("voiceagent:", description="Prefix of every Redis key.")
    state_ttl_seconds: int = Field(
        3600, ge=60, description="Redis keys (bookings, call snapshots) expire after this."
    )
    state_keys: list[str] = Field(
        default_factory=list,
        validate_default=True,
        description="AES-GCM keys (base64 of 32 bytes) sealing PHI in Redis, as a JSON list; "
        "the first seals, any opens (rotation). Required with redis_url.",
    )
    smtp_host: str | None = Field(
        None, description="SMTP server for intake emails; without it no email is sent."
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port.")
    smtp_tls: str = Field(
        "starttls", description="SMTP security: starttls, implicit (SMTPS) or none."
    )
    smtp_username: str | None = Field(None, description="SMTP AUTH user (optional).")
    smtp_password: str | None = Field(None, description="SMTP AUTH password.")
    smtp_ca_file: str | None = Field(
        None, description="PEM file of CA certificates to trust for SMTP (a private CA)."
    )
    email_from: str = Field("voiceagent@localhost", description="From address of intake emails.")
    email_to: str | None = Field(None, description="The clinic's address for intake emails.")
    email_phi: bool = Field(
        True,
        description="Put the intake (PHI) in the email; false sends only a notice (call id, "
        "time, status and where to fetch the record).",
    )

    @field_validator("smtp_tls")
    @classmethod
    def _smtp_tls(cls, value: str) -> str:
        if value not in ("starttls", "implicit", "none"):
            raise ValueError("must be starttls, implicit or none")
        return value

    @field_validator("smtp_ca_file")
    @classmethod
    def _ca_file(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f"{value} is not a file")
        return value

    @field_validator("state_keys")
    @classmethod
    def _state_keys(cls, value: list[str], info: ValidationInfo) -> list[str]:
        from agent.sealing import decode_key

        if info.data.get("redis_url") and not value:
            raise ValueError("needed with redis_url (PHI is encrypted in Redis)")
        for key in value:
            decode_key(key)  # SealError is a ValueError: one line naming the problem
        return value

    # ---- operations (issue 6: logs, metrics, HTTP, shutdown)
    http_host: str = Field(
        "127.0.0.1", description="IP address for the HTTP health, metrics and admin API."
    )
    log_redaction: str = Field(
        "full",
        description="PHI redaction in logs: 'full' (a tag such as [PHONE]) or 'partial' "
        "(the tag keeps the last two digits or a first letter).",
    )
    api_key: str | None = Field(
        None, description="Key for the /api routes (X-API-Key header); unset: /api refuses all."
    )
    drain_seconds: float = Field(
        30.0,
        ge=0,
        description="On SIGTERM, how long active calls may go on (new INVITEs get 503) "
        "before the agent says goodbye and hangs up.",
    )
    sip_allowed_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs allowed to send SIP (a JSON list); empty allows every source.",
    )

    @field_validator("log_redaction")
    @classmethod
    def _redaction(cls, value: str) -> str:
        if value not in ("full", "partial"):
            raise ValueError("must be full or partial")
        return value

    @field_validator("sip_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"not a network: {network!r}") from None
        return value

    # --- language model phase handler (issue 5, LLM half) ---
    llm_provider: str = Field(
        "embedded",
        description="Who reads the caller's answers: 'embedded' (the rule based extractors "
        "alone) or 'openai' (a GPT 4 class model behind an OpenAI compatible API proposes, "
        "the rules check; the call falls back to the rules if the model fails).",
    )
    openai_base_url: str = Field(
        "https://api.openai.com/v1",
        description="Base URL of the OpenAI compatible chat completions API (a vLLM, "
        "llama.cpp or Ollama server of your own keeps PHI on site).",
    )
    openai_api_key: SecretStr | None = Field(
        None, description="API key for openai_base_url (a local server may need none)."
    )
    llm_model: str = Field("gpt-4o", description="Chat model name for llm_provider=openai.")
    llm_turn_budget_s: float = Field(
        1.5,
        gt=0,
        le=10,
        description="Seconds the model gets per caller turn; a later answer is dropped and "
        "that turn is read by the rules.",
    )

    llm_stream_usage: bool = Field(
        True,
        description="Ask the model server for token counts at the end of each streamed "
        "reply (stream_options.include_usage; voiceagent_llm_tokens_total). Turn off for "
        "an OpenAI compatible server that rejects the option.",
    )
    llm_consult: Consult = Field(
        Consult.OPEN_OR_UNREAD,
        description="Which caller turns go to the model: 'open_or_unread' (answers to open "
        "questions, and any answer the rules cannot read; a closed answer the rules read, "
        "such as a yes, a date or a member ID, is not sent) or 'every_turn'.",
    )

    @field_validator("llm_provider")
    @classmethod
    def _llm_provider(cls, value: str) -> str:
        if value not in ("embedded", "openai"):
            raise ValueError("must be embedded or openai")
        return value

    # --- cloud speech providers (issue 5): per-role choice, Deepgram settings ---------------
    stt_provider: str = Field(
        "embedded",
        description="Speech recognition: 'embedded' (pocketsphinx) or 'deepgram' (streaming, "
        "with the embedded recogniser taking over a call whose Deepgram socket fails).",
    )
    tts_provider: str = Field(
        "embedded",
        description="Speech synthesis: 'embedded' (espeak-ng) or 'deepgram' (Aura, with "
        "espeak-ng taking over a call whose requests fail).",
    )
    deepgram_api_key: SecretStr | None = Field(
        None, description="Deepgram API key (sent as 'Authorization: Token KEY'; never logged)."
    )
    deepgram_url: str = Field(
        "https://api.deepgram.com",
        description="Deepgram base URL: REST at URL/v1/speak, WebSockets at the same host "
        "with ws(s):// (a self-hosted Deepgram, or a loopback test server).",
    )
    deepgram_stt_model: str = Field(
        "nova-2-phonecall", description="Deepgram streaming model for 8 kHz telephone audio."
    )
    deepgram_endpointing_ms: int = Field(
        300, ge=10, le=5000, description="Silence after which Deepgram marks speech_final."
    )
    deepgram_ends_turns: bool = Field(
        False,
        description="Let Deepgram's speech_final end the caller's turn instead of the 700 ms "
        "endpointer: faster answers, but a caller who pauses longer may be cut off.",
    )
    deepgram_tts_voice: str = Field("aura-asteria-en", description="Deepgram Aura voice model.")
    deepgram_connect_timeout_seconds: float = Field(
        2.0, gt=0, description="Give up opening a Deepgram socket or request after this long."
    )
    deepgram_final_timeout_seconds: float = Field(
        1.5,
        gt=0,
        description="After the caller stops, wait this long for Deepgram's final transcript "
        "(reconnects included) before the embedded recogniser takes the turn.",
    )
    deepgram_tts_first_byte_timeout_seconds: float = Field(
        1.5, gt=0, description="Wait this long for Aura's first audio before using espeak-ng."
    )

    @field_validator("sip_host", "public_address", "http_host")
    @classmethod
    def _ip_literal(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"must be an IP address, not {value!r}") from None
        return value

    @field_validator("rtp_ports")
    @classmethod
    def _port_range(cls, value: str) -> str:
        PortRange.parse(value)
        return value

    @field_validator("app")
    @classmethod
    def _app(cls, value: str) -> str:
        if value not in ("intake", "echo"):
            raise ValueError("must be intake or echo")
        return value

    @field_validator("stt_provider", "tts_provider")
    @classmethod
    def _speech_provider(cls, value: str) -> str:
        if value not in ("embedded", "deepgram"):
            raise ValueError("must be embedded or deepgram")
        return value

    @field_validator("deepgram_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.lower() not in ("debug", "info", "warning", "error"):
            raise ValueError("must be debug, info, warning or error")
        return value.lower()

    @property
    def port_range(self) -> PortRange:
        """The RTP port range."""
        return PortRange.parse(self.rtp_ports)

    @property
    def advertised_address(self) -> str:
        """The address for Contact and SDP."""
        return self.public_address or self.sip_host

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """CLI (init) > environment > TOML file."""
        toml_path = os.environ.get("VOICEAGENT_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_path)))
        return tuple(sources)


def load_settings(overrides: dict[str, Any], config_file: str | None = None) -> Settings:
    """Build `Settings`, translating any validation error into one `ConfigError` line."""
    if config_file is not None:
        if not Path(config_file).is_file():
            raise ConfigError(f"configuration file {config_file} does not exist")
        os.environ["VOICEAGENT_CONFIG"] = config_file
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "configuration"
        env = f"VOICEAGENT_{where.upper()}"
        raise ConfigError(f"invalid setting {where} ({env}): {first['msg']}") from None
    except ValueError as exc:  # a broken TOML file
        raise ConfigError(f"cannot read configuration: {exc}") from None
