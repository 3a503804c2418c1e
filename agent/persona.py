"""A simulated patient's script: the YAML file `voiceagent call --script` and the demo read.

```yaml
voice: en-us+m3          # espeak-ng voice of the patient (not the agent's)
caller_id: "+16175550142"  # From user part; invented numbers only
turns:
  - say: "blue cross blue shield"
  - dtmf: "XGH123456789#"
  - say: "I have had a cough for three days"
    barge_in_after_ms: 1500   # start 1.5 s into the agent's prompt instead of after it
  - silence: 9
  - wav: recordings/answer.wav
expect:                  # record fields the call must end with (dotted paths)
  status: complete
  insurance.payer: Blue Cross Blue Shield
  demographics.date_of_birth: "1984-03-03"
```

Each turn answers the agent's next prompt. Values under ``expect`` are compared as strings
with the record's JSON values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent.errors import AgentError
from agent.record import IntakeRecord


class PersonaTurn(BaseModel):
    """One scripted answer: exactly one of say, wav, dtmf, silence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    say: str | None = None
    wav: str | None = None
    dtmf: str | None = None
    silence: float | None = Field(default=None, ge=0, le=120)
    barge_in_after_ms: int | None = Field(default=None, ge=0, le=60_000)
    hang_up: bool = False  # hang up instead of answering (an early hang-up)

    @model_validator(mode="after")
    def _one_action(self) -> PersonaTurn:
        actions = [a for a in (self.say, self.wav, self.dtmf, self.silence) if a is not None]
        if len(actions) + int(self.hang_up) != 1:
            raise ValueError("each turn needs exactly one of say, wav, dtmf, silence, hang_up")
        if self.dtmf is not None and not all(c in "0123456789*#ABCD" for c in self.dtmf):
            raise ValueError("dtmf may hold only 0-9, *, # and A-D")
        return self


class Persona(BaseModel):
    """A whole script."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "patient"
    voice: str = "en-us+m3"
    caller_id: str | None = None
    turns: list[PersonaTurn]
    expect: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> Persona:
        """Read and validate a script file.

        Raises:
            AgentError: one line naming the problem.
        """
        try:
            data = yaml.safe_load(Path(path).read_text())
            persona = cls.model_validate(data)
        except OSError as exc:
            raise AgentError(f"cannot read script {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise AgentError(f"script {path} is not valid YAML: {exc}") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise AgentError(f"script {path}: {where}: {first['msg']}") from None
        base = Path(path).parent
        turns = [
            t.model_copy(update={"wav": str(base / t.wav)}) if t.wav else t for t in persona.turns
        ]
        return persona.model_copy(update={"turns": turns})


def unmet_expectations(persona: Persona, record: IntakeRecord) -> list[str]:
    """The ``expect`` entries the record does not satisfy (field names only: no values)."""
    data = record.model_dump(mode="json")
    unmet: list[str] = []
    for path, wanted in persona.expect.items():
        value: Any = data
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if _norm(value) != _norm(wanted):
            unmet.append(path)
    return unmet


def _norm(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(_norm(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # "duration_days: 7" matches 7.0
    return "" if value is None else str(value).strip().lower()
