"""Prometheus metrics: one registry for the whole process, every metric with HELP text.

Labels carry only bounded, PHI-free values (a role, a reason class, a SIP method or status
code), never anything a caller said or a header that identifies them. Modules that count
something import the metric from here; the HTTP edge serves `REGISTRY` at /metrics.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

REGISTRY = CollectorRegistry(auto_describe=True)

PROVIDER_FAILOVERS = Counter(
    "voiceagent_provider_failovers",
    "Calls switched from a configured provider to the embedded one, by role "
    "(stt, tts, llm) and reason (timeout, disconnect, http_429, http_5xx, error).",
    ["role", "reason"],
    registry=REGISTRY,
)
