"""Prometheus metrics: one registry for the whole process, every metric with HELP text.

Labels carry only bounded, PHI-free values (a role, a reason class, a SIP method or status
code), never anything a caller said or a header that identifies them. Modules that count
something import the metric from here; the HTTP edge serves `REGISTRY` at /metrics.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

PROVIDER_FAILOVERS = Counter(
    "voiceagent_provider_failovers",
    "Calls switched from a configured provider to the embedded one, by role "
    "(stt, tts, llm) and reason (timeout, disconnect, http_429, http_5xx, error).",
    ["role", "reason"],
    registry=REGISTRY,
)

# ----------------------------------------------------------------- state, records and email
# (issue 6 items 1-2: agent/store.py, agent/redis_store.py, agent/records.py, agent/mailer.py)
STATE_OPERATIONS = Counter(
    "voiceagent_state_operations",
    "Call-state store operations, by backend (memory, redis), operation (book_slot, "
    "booked_slots, release_slot, save_call, load_call, writeback) and result (ok, local, "
    "error): 'local' means Redis was away and local state answered.",
    ["backend", "operation", "result"],
    registry=REGISTRY,
)
STATE_LATENCY = Histogram(
    "voiceagent_state_operation_seconds",
    "Latency of call-state store operations, by backend and operation.",
    ["backend", "operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
    registry=REGISTRY,
)
REDIS_CONNECTED = Gauge(
    "voiceagent_redis_connected",
    "1 while the Redis state store answers, 0 while calls run on local state.",
    registry=REGISTRY,
)
STATE_WRITEBACK_DEPTH = Gauge(
    "voiceagent_state_writeback_depth",
    "Writes waiting for Redis to come back (the bounded write-behind queue).",
    registry=REGISTRY,
)
STATE_WRITEBACK_DROPPED = Counter(
    "voiceagent_state_writeback_dropped",
    "Writes dropped because the write-behind queue was full during a long Redis outage.",
    registry=REGISTRY,
)
SLOT_CONFLICTS = Counter(
    "voiceagent_slot_conflicts",
    "Slots booked on local state during a Redis outage that another instance held when "
    "written back (staff must rebook one of them).",
    registry=REGISTRY,
)
RECORDS_STORED = Counter(
    "voiceagent_records_stored",
    "Intake record saves, by status (in_progress, complete, incomplete, urgent, "
    "transferred, callback).",
    ["status"],
    registry=REGISTRY,
)
RECORDS_EMAILED = Counter(
    "voiceagent_records_emailed",
    "Intake emails the SMTP server accepted, by kind (full: with the record; notice: without PHI).",
    ["kind"],
    registry=REGISTRY,
)
EMAIL_FAILURES = Counter(
    "voiceagent_email_failures",
    "Failed intake email attempts (each is retried with backoff), by reason (connect, "
    "tls, auth, rejected, timeout, error).",
    ["reason"],
    registry=REGISTRY,
)
OUTBOX_DEPTH = Gauge(
    "voiceagent_outbox_depth",
    "Intake emails waiting in the durable outbox.",
    registry=REGISTRY,
)
