"""Provider choice per role comes from the settings; each call gets its own failover state."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from agent.config import ConfigError, load_settings
from agent.providers.deepgram_client import deepgram_environment
from agent.providers.failover import FailoverStt, FailoverTts, PromptTts
from agent.providers.selection import build_speech_providers
from tests.cloud.test_failover import KeepingStt


def silence(text: str) -> NDArray[np.int16]:
    return np.zeros(160, dtype=np.int16)


def test_embedded_by_default() -> None:
    embedded = KeepingStt()
    speech = build_speech_providers(load_settings({}), embedded, silence)
    assert speech.cloud_stt is None and speech.cloud_tts is None
    assert speech.stt_for_call("a") is embedded
    assert isinstance(speech.tts_for_call("a"), PromptTts)


def test_deepgram_per_role_with_a_failover_state_per_call() -> None:
    settings = load_settings(
        {
            "stt_provider": "deepgram",
            "tts_provider": "embedded",
            "deepgram_url": "http://127.0.0.1:9/",
            "deepgram_api_key": "k",
        }
    )
    speech = build_speech_providers(settings, KeepingStt(), silence)
    first, second = speech.stt_for_call("a"), speech.stt_for_call("b")
    assert isinstance(first, FailoverStt) and isinstance(second, FailoverStt)
    assert first.switch is not second.switch
    assert first.switch.call_id == "a" and not first.switch.failed_over
    assert isinstance(speech.tts_for_call("a"), PromptTts)  # TTS stays embedded
    both = build_speech_providers(
        load_settings(
            {
                "stt_provider": "deepgram",
                "tts_provider": "deepgram",
                "deepgram_url": "http://127.0.0.1:9",
            }
        ),
        KeepingStt(),
        silence,
    )
    assert isinstance(both.tts_for_call("a"), FailoverTts)


def test_the_api_key_never_shows_in_the_settings_repr() -> None:
    settings = load_settings({"deepgram_api_key": "very-secret"})
    assert "very-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("setting", "value"),
    [("stt_provider", "whisper"), ("tts_provider", "openai"), ("deepgram_url", "ws://x")],
)
def test_bad_choices_stop_the_server_with_one_line(setting: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"VOICEAGENT_{setting.upper()}"):
        load_settings({setting: value})


def test_one_url_names_rest_and_websockets_on_the_same_host() -> None:
    local = deepgram_environment("http://127.0.0.1:8080/")
    assert (local.base, local.production) == ("http://127.0.0.1:8080", "ws://127.0.0.1:8080")
    cloud = deepgram_environment("https://api.deepgram.com")
    assert cloud.production == "wss://api.deepgram.com"
