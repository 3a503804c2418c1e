"""The records outbox and the SMTP sender, against aiosmtpd with STARTTLS or TLS and AUTH.

The outbox row is written in the final save's transaction; the sender marks it sent only
after the server's 250; a sender started later (a restart) sends what is left, once.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from datetime import date, datetime
from email.message import Message
from pathlib import Path

import pytest

from agent.intake_email import Addresses, compose, message_id
from agent.mailer import Mailer, SmtpConfig
from agent.metrics import REGISTRY
from agent.record import Demographics, Insurance, IntakeRecord, IntakeStatus
from agent.records import SqliteRecords
from tests.ops.peers import SMTP_PASSWORD, SMTP_USER, Inbox, SmtpPeer, TlsFiles, self_signed

T0 = datetime(2026, 11, 27, 9, 0)
ADDRESSES = Addresses(
    "intake@maple-street.example",
    "frontdesk@maple-street.example",
    "http://127.0.0.1:8080/api/intakes",
)


def _record(call_id: str = "c0ffee@127.0.0.1", *, ended: bool = True) -> IntakeRecord:
    return IntakeRecord(
        call_id=call_id,
        started_at=T0,
        ended_at=datetime(2026, 11, 27, 9, 4) if ended else None,
        status=IntakeStatus.INCOMPLETE if ended else IntakeStatus.IN_PROGRESS,
        phase_reached="ADDRESS",
        caller_id="2125550134",
        insurance=Insurance(payer="Self-pay (uninsured)", self_pay=True),
        demographics=Demographics(
            first_name="Ann",
            last_name="Lee",
            date_of_birth=date(1975, 11, 2),
            phone="+12125550134",
        ),
    )


PHI = ["Ann", "Lee", "1975-11-02", "2125550134", "Self-pay"]


def _text(message: Message) -> tuple[str, str]:
    parts = {p.get_content_type(): p.get_payload(decode=True) for p in message.walk()}
    plain, markup = parts["text/plain"], parts["text/html"]
    assert isinstance(plain, bytes) and isinstance(markup, bytes)
    return plain.decode(), markup.decode()


# ----------------------------------------------------------------- the outbox table
def test_only_the_final_save_queues_an_email_once_and_it_survives_a_restart(
    tmp_path: Path,
) -> None:
    woken: list[int] = []
    path = tmp_path / "records.sqlite3"
    store = SqliteRecords(path, outbox=True, on_outbox=lambda: woken.append(1))
    store.save(_record(ended=False))  # a phase change: no email yet
    assert store.outbox_depth() == 0 and woken == []
    store.save(_record())
    store.save(_record())  # saved again at the end: still one email
    assert store.outbox_depth() == 1 and len(woken) == 2
    store.close()
    again = SqliteRecords(path, outbox=True)
    assert [e.call_id for e in again.outbox_due(now=0.0)] == ["c0ffee@127.0.0.1"]
    again.outbox_failed("c0ffee@127.0.0.1", "connect", next_attempt_at=100.0)
    assert again.outbox_due(now=99.0) == []
    assert again.outbox_due(now=100.0)[0].attempts == 1
    again.outbox_sent("c0ffee@127.0.0.1", now=101.0)
    assert again.outbox_depth() == 0 and again.outbox_next_attempt() is None
    assert again.outbox_status("c0ffee@127.0.0.1") == (1, 101.0)
    again.close()


def test_without_email_configured_nothing_is_queued(tmp_path: Path) -> None:
    store = SqliteRecords(tmp_path / "r.sqlite3")
    store.save(_record())
    assert store.outbox_depth() == 0
    store.close()


def test_the_email_is_queued_in_the_same_transaction_as_the_final_save(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    store = SqliteRecords(path, outbox=True)
    store.save(_record(ended=False))
    with sqlite3.connect(path) as db:  # make the outbox insert fail, as a full disk would
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'no'); END"
        )
    with pytest.raises(sqlite3.IntegrityError):
        store.save(_record())
    kept = store.get("c0ffee@127.0.0.1")
    assert kept is not None and kept.status is IntakeStatus.IN_PROGRESS  # rolled back too
    store.close()


# ----------------------------------------------------------------- the message
def test_the_full_email_has_plain_text_and_html_with_the_intake() -> None:
    message = compose(_record(), ADDRESSES, phi=True)
    plain, markup = _text(message)
    for value in PHI:
        assert value in plain and value in markup, value
    assert "<table>" in markup and "Date of birth" in plain
    assert message["Message-ID"] == message_id("c0ffee@127.0.0.1", ADDRESSES.sender)
    assert message["Message-ID"].endswith("@maple-street.example>")
    assert not any(v in message["Subject"] for v in PHI)
    assert "c0ffee" not in message["Message-ID"]  # a hash, stable per intake


def test_the_notice_carries_no_phi_only_where_to_fetch_the_record() -> None:
    message = compose(_record(), ADDRESSES, phi=False)
    whole = message.as_string()
    for value in PHI:
        assert value not in whole, value
    plain, markup = _text(message)
    link = "http://127.0.0.1:8080/api/intakes/c0ffee%40127.0.0.1"
    assert link in plain and link in markup
    assert "incomplete" in plain and "2026-11-27T09:04:00" in plain
    assert message["X-VoiceAgent-Kind"] == "notice"


# ----------------------------------------------------------------- sending
@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    return self_signed(tmp_path / "tls")


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def smtp(tls: TlsFiles, inbox: Inbox) -> Iterator[SmtpPeer]:
    peer = SmtpPeer(tls, inbox)
    peer.start()
    yield peer
    peer.stop()


def _config(peer: SmtpPeer, *, phi: bool = True, **changes: object) -> SmtpConfig:
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": peer.port,
        "tls": "implicit" if peer.implicit else "starttls",
        "username": SMTP_USER,
        "password": SMTP_PASSWORD,
        "ca_file": str(peer.tls.cert),
        "addresses": ADDRESSES,
        "phi": phi,
    }
    base.update(changes)
    return SmtpConfig(**base)  # type: ignore[arg-type]


def _emailed(kind: str) -> float:
    return REGISTRY.get_sample_value("voiceagent_records_emailed_total", {"kind": kind}) or 0.0


@pytest.mark.peer
async def test_starttls_with_auth_delivers_once_and_marks_it_sent(
    tmp_path: Path, smtp: SmtpPeer, inbox: Inbox
) -> None:
    store = SqliteRecords(tmp_path / "r.sqlite3", outbox=True)
    store.save(_record())
    before = _emailed("full")
    assert await Mailer(store, _config(smtp)).flush(10.0)
    assert len(inbox.messages) == 1
    sender, recipients, over_tls = inbox.envelopes[0]
    assert (sender, recipients, over_tls) == (
        "intake@maple-street.example",
        ["frontdesk@maple-street.example"],
        True,
    )
    assert "Ann" in _text(inbox.messages[0])[0]
    assert _emailed("full") == before + 1
    assert await Mailer(store, _config(smtp)).flush(10.0)  # a restarted sender: nothing left
    assert len(inbox.messages) == 1
    store.close()


@pytest.mark.peer
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.filterwarnings("ignore:Session.login_data is deprecated")
async def test_implicit_tls_and_the_notice_option(tmp_path: Path, tls: TlsFiles) -> None:
    inbox = Inbox()
    peer = SmtpPeer(tls, inbox, implicit=True)
    peer.start()
    try:
        store = SqliteRecords(tmp_path / "r.sqlite3", outbox=True)
        store.save(_record())
        assert await Mailer(store, _config(peer, phi=False)).flush(10.0)
        assert inbox.envelopes[0][2] is True
        whole = inbox.messages[0].as_string()
        assert all(v not in whole for v in PHI)
        store.close()
    finally:
        peer.stop()


@pytest.mark.peer
async def test_smtp_down_then_up_is_sent_by_the_next_attempt_exactly_once(
    tmp_path: Path, tls: TlsFiles
) -> None:
    inbox = Inbox()
    peer = SmtpPeer(tls, inbox)  # its port is chosen, nothing listens yet
    store = SqliteRecords(tmp_path / "r.sqlite3", outbox=True)
    store.save(_record())
    assert not await Mailer(store, _config(peer)).flush(10.0)
    assert store.outbox_status("c0ffee@127.0.0.1") == (1, None)
    next_at = store.outbox_next_attempt()
    assert next_at is not None  # rescheduled about 5 s on (the first backoff step)
    peer.start()
    try:
        assert await Mailer(store, _config(peer)).flush(10.0)
        assert await Mailer(store, _config(peer)).flush(10.0)
        assert len(inbox.by_message_id(message_id("c0ffee@127.0.0.1", ADDRESSES.sender))) == 1
        assert len(inbox.messages) == 1
    finally:
        peer.stop()
        store.close()


@pytest.mark.peer
@pytest.mark.parametrize(
    ("password", "ca_file", "reason"),
    [("wrong", True, "auth"), (SMTP_PASSWORD, False, "tls")],
    ids=["bad-password", "untrusted-certificate"],
)
async def test_a_refused_login_or_an_untrusted_certificate_is_retried_not_lost(
    tmp_path: Path, smtp: SmtpPeer, inbox: Inbox, password: str, ca_file: bool, reason: str
) -> None:
    store = SqliteRecords(tmp_path / "r.sqlite3", outbox=True)
    store.save(_record())
    failures = (
        REGISTRY.get_sample_value("voiceagent_email_failures_total", {"reason": reason}) or 0.0
    )
    config = dataclasses.replace(
        _config(smtp), password=password, ca_file=str(smtp.tls.cert) if ca_file else None
    )
    assert not await Mailer(store, config).flush(10.0)
    assert inbox.messages == []
    assert store.outbox_status("c0ffee@127.0.0.1") == (1, None)
    assert (
        REGISTRY.get_sample_value("voiceagent_email_failures_total", {"reason": reason})
        == failures + 1
    )
    store.close()
