"""The email staff get for each finished or incomplete intake: plain text and HTML.

Pure: a record in, an `email.message.EmailMessage` out. Two kinds:

* ``full``: the intake (PHI) as a plain-text summary and an HTML table (RFC 2046
  multipart/alternative, the plain part first).
* ``notice``: no PHI at all, for clinics that keep PHI out of email: the call id, when the
  call ended, the intake's status and where to fetch the record (the records API).

The subject never holds PHI (mail clients show it in notifications and lock screens). The
Message-ID (RFC 5322 §3.6.4) is derived from the call id, so every attempt to send one
intake's email carries the same id and a duplicate is recognisable as one.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import quote

from agent.record import IntakeRecord

FULL = "full"
NOTICE = "notice"


@dataclass(frozen=True, slots=True)
class Addresses:
    """Who sends and who receives, and where staff fetch records."""

    sender: str
    recipient: str
    records_url: str  # the records API, e.g. http://10.0.0.5:8080/api/intakes


def message_id(call_id: str, sender: str) -> str:
    """The intake's stable Message-ID (a hash: the call id is not put in the header)."""
    domain = sender.rpartition("@")[2] or "voiceagent.invalid"
    digest = hashlib.sha256(call_id.encode()).hexdigest()[:32]
    return f"<intake.{digest}@{domain}>"


def compose(record: IntakeRecord, addresses: Addresses, *, phi: bool) -> EmailMessage:
    """The email for ``record``: with the intake when ``phi``, else a notice."""
    msg = EmailMessage()
    status = record.status.value.replace("_", " ")
    msg["Subject"] = f"Patient intake ({status}), call {record.call_id[:8]}"
    msg["From"] = addresses.sender
    msg["To"] = addresses.recipient
    msg["Message-ID"] = message_id(record.call_id, addresses.sender)
    ended = record.ended_at or record.started_at
    msg["Date"] = format_datetime(ended if ended.tzinfo else ended.astimezone())
    msg["X-VoiceAgent-Kind"] = FULL if phi else NOTICE
    link = f"{addresses.records_url.rstrip('/')}/{quote(record.call_id, safe='')}"
    rows = _rows(record) if phi else _notice_rows(record, link)
    intro = (
        "A patient intake call has ended. The details follow."
        if phi
        else "A patient intake call has ended. Fetch the record from the records API."
    )
    text = [intro, ""] + [f"{label}: {value}" for label, value in rows]
    if phi:
        text += ["", f"Record: {link}"]
    msg.set_content("\n".join(text) + "\n")
    cells = "".join(
        f"<tr><th align='left'>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
        for label, value in rows
    )
    msg.add_alternative(
        f"<html><body><p>{html.escape(intro)}</p><table>{cells}</table>"
        f"<p><a href='{html.escape(link, quote=True)}'>Record</a></p></body></html>",
        subtype="html",
    )
    return msg


def _notice_rows(record: IntakeRecord, link: str) -> list[tuple[str, str]]:
    ended = record.ended_at or record.started_at
    return [
        ("Call", record.call_id),
        ("Ended", ended.isoformat(timespec="seconds")),
        ("Status", record.status.value),
        ("Record", link),
    ]


def _rows(record: IntakeRecord) -> list[tuple[str, str]]:
    """Label and value of every field the caller gave (empty ones left out)."""
    ins, comp, demo = record.insurance, record.complaint, record.demographics
    addr, pharm, contact, appt = (
        record.address,
        record.pharmacy,
        record.emergency_contact,
        record.appointment,
    )
    street = ", ".join(
        p for p in (addr.street, addr.city, addr.state, addr.zip_code) if p is not None
    )
    candidates: list[tuple[str, object]] = [
        ("Call", record.call_id),
        ("Status", record.status.value),
        ("Phase reached", record.phase_reached),
        ("Started", record.started_at.isoformat(timespec="seconds")),
        ("Ended", record.ended_at.isoformat(timespec="seconds") if record.ended_at else None),
        ("Caller ID", record.caller_id),
        ("Urgent", record.urgent_reason),
        ("Callback message", record.callback_message),
        ("Payer", ins.payer),
        ("Member ID", ins.member_id),
        ("Reason for visit", comp.description),
        ("Symptoms", ", ".join(comp.symptoms) or None),
        ("Duration (days)", comp.duration_days),
        ("Severity (0-10)", comp.severity),
        ("Red flag", comp.red_flag),
        ("Name", " ".join(p for p in (demo.first_name, demo.last_name) if p) or None),
        ("Date of birth", demo.date_of_birth.isoformat() if demo.date_of_birth else None),
        ("Phone", demo.phone),
        ("Address", street or None),
        ("Pharmacy", " ".join(p for p in (pharm.name, pharm.location) if p) or None),
        ("Emergency contact", contact.name),
        ("Relationship", contact.relationship),
        ("Contact phone", contact.phone),
        ("Appointment", appt.start.isoformat(timespec="minutes") if appt.start else None),
        ("Provider", appt.provider),
        ("Audio clips", ", ".join(record.audio_clips) or None),
    ]
    return [(label, str(value)) for label, value in candidates if value is not None]
