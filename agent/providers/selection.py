"""Which provider serves each speech role, from the settings: built once, wrapped per call.

``stt_provider`` and ``tts_provider`` are "embedded" or "deepgram". The embedded providers
are always built (they are every cloud call's fallback); a cloud provider is built once and
shared by every call, and each call gets its own failover wrapper (`FailoverStt`,
`FailoverTts`) so that one call's switch to the embedded provider leaves the others alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from agent.config import Settings
from agent.providers.base import SpeechToText, TextToSpeech
from agent.providers.failover import FailoverStt, FailoverTts, PromptTts, Switch

__all__ = ["SpeechProviders", "build_speech_providers"]

_STEP_MARGIN_S = 0.5  # over the provider's own budget, so its typed error wins the race


@dataclass(frozen=True, slots=True)
class SpeechProviders:
    """The process's speech providers; per-call factories for the cloud roles."""

    embedded_stt: SpeechToText
    embedded_tts: TextToSpeech
    cloud_stt: SpeechToText | None = None
    cloud_tts: TextToSpeech | None = None
    stt_name: str = "embedded"
    tts_name: str = "embedded"
    stt_step_timeout_s: float = 5.0

    def stt_for_call(self, call_id: str) -> SpeechToText:
        """The call's recogniser: the cloud one with failover, or the embedded one."""
        if self.cloud_stt is None:
            return self.embedded_stt
        switch = Switch(call_id, "stt", self.stt_name)
        return FailoverStt(
            self.cloud_stt, self.embedded_stt, switch, step_timeout_s=self.stt_step_timeout_s
        )

    def tts_for_call(self, call_id: str) -> TextToSpeech:
        """The call's synthesiser: the cloud one with failover, or the embedded one."""
        if self.cloud_tts is None:
            return self.embedded_tts
        return FailoverTts(self.cloud_tts, self.embedded_tts, Switch(call_id, "tts", self.tts_name))

    async def aclose(self) -> None:
        """Release the cloud clients (the embedded recogniser is closed by its owner)."""
        for provider in (self.cloud_stt, self.cloud_tts):
            if provider is not None:
                await provider.aclose()


def build_speech_providers(
    settings: Settings,
    embedded_stt: SpeechToText,
    render_prompt: Callable[[str], NDArray[np.int16]],
) -> SpeechProviders:
    """The providers ``settings`` chooses, with the embedded ones as fallback."""
    cloud_stt: SpeechToText | None = None
    cloud_tts: TextToSpeech | None = None
    key = settings.deepgram_api_key
    api_key = None if key is None else key.get_secret_value()
    step_s = (
        settings.deepgram_connect_timeout_seconds
        + settings.deepgram_final_timeout_seconds
        + _STEP_MARGIN_S
    )
    if settings.stt_provider == "deepgram":
        from agent.providers.deepgram_stt import DeepgramStt, DeepgramSttConfig

        cloud_stt = DeepgramStt(
            DeepgramSttConfig(
                url=settings.deepgram_url,
                api_key=api_key,
                model=settings.deepgram_stt_model,
                connect_timeout_s=settings.deepgram_connect_timeout_seconds,
                final_timeout_s=settings.deepgram_final_timeout_seconds,
                endpointing_ms=settings.deepgram_endpointing_ms,
                ends_turns=settings.deepgram_ends_turns,
            )
        )
    if settings.tts_provider == "deepgram":
        from agent.providers.deepgram_tts import DeepgramTts, DeepgramTtsConfig

        cloud_tts = DeepgramTts(
            DeepgramTtsConfig(
                url=settings.deepgram_url,
                api_key=api_key,
                voice=settings.deepgram_tts_voice,
                first_byte_timeout_s=settings.deepgram_tts_first_byte_timeout_seconds,
            )
        )
    return SpeechProviders(
        embedded_stt=embedded_stt,
        embedded_tts=PromptTts(render_prompt),
        cloud_stt=cloud_stt,
        cloud_tts=cloud_tts,
        stt_name=settings.stt_provider,
        tts_name=settings.tts_provider,
        stt_step_timeout_s=step_s,
    )
