"""The intake record: what one call produced, as a typed pydantic model.

Everything a caller said that the intake keeps is here, so it is PHI as a whole: it goes to
the records store and to staff, never to logs or metric labels. `IntakeRecord.safe_summary`
is the only view meant for logs (identifiers, status and counts, no values).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class IntakeStatus(StrEnum):
    """How the call ended for the intake."""

    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"  # the caller hung up, or the call failed, before the end
    URGENT = "urgent"  # a red flag interrupted the intake
    TRANSFERRED = "transferred"  # handed to staff (REFER)
    CALLBACK = "callback"  # a message was taken for staff to call back


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Insurance(_Model):
    """Payer and member identifier."""

    payer: str | None = None
    member_id: str | None = None
    self_pay: bool = False


class Complaint(_Model):
    """The reason for the visit."""

    description: str | None = None
    symptoms: list[str] = Field(default_factory=list)
    duration_days: float | None = None
    severity: int | None = Field(default=None, ge=0, le=10)
    category: str | None = None
    red_flag: str | None = None


class Demographics(_Model):
    """Who the patient is."""

    first_name: str | None = None
    last_name: str | None = None
    date_of_birth: date | None = None
    phone: str | None = None


class Address(_Model):
    """Where the patient lives."""

    street: str | None = None
    city: str | None = None
    state: str | None = None
    zip_code: str | None = None


class Pharmacy(_Model):
    """The patient's pharmacy."""

    name: str | None = None
    location: str | None = None


class EmergencyContact(_Model):
    """Whom to call in an emergency."""

    name: str | None = None
    relationship: str | None = None
    phone: str | None = None


class Appointment(_Model):
    """The booked slot."""

    slot_id: str | None = None
    start: datetime | None = None
    provider: str | None = None


class Turn(_Model):
    """One line of the conversation."""

    speaker: str  # "agent" or "caller"
    text: str
    phase: str
    at_s: float  # seconds since the call started


class IntakeRecord(_Model):
    """One call's intake."""

    call_id: str
    started_at: datetime
    ended_at: datetime | None = None
    status: IntakeStatus = IntakeStatus.IN_PROGRESS
    phase_reached: str = "GREETING"
    caller_id: str | None = None
    insurance: Insurance = Field(default_factory=Insurance)
    complaint: Complaint = Field(default_factory=Complaint)
    demographics: Demographics = Field(default_factory=Demographics)
    address: Address = Field(default_factory=Address)
    pharmacy: Pharmacy = Field(default_factory=Pharmacy)
    emergency_contact: EmergencyContact = Field(default_factory=EmergencyContact)
    appointment: Appointment = Field(default_factory=Appointment)
    urgent_reason: str | None = None
    callback_message: str | None = None
    transcript: list[Turn] = Field(default_factory=list)
    audio_clips: list[str] = Field(default_factory=list)  # names of clips in the store

    def safe_summary(self) -> dict[str, object]:
        """Identifiers, status and counts only: what may appear in a log line."""
        return {
            "call_id": self.call_id,
            "status": self.status.value,
            "phase_reached": self.phase_reached,
            "turns": len(self.transcript),
            "clips": len(self.audio_clips),
        }
