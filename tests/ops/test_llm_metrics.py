"""Language-model metrics: each request to the (loopback) OpenAI-compatible server is timed."""

from __future__ import annotations

from agent.metrics import REGISTRY
from agent.providers.openai_llm import OpenAiChat
from tests.cloud.conftest import chat, openai_server  # noqa: F401  (fixtures)
from tests.cloud.openai_server import OpenAiServer
from tests.cloud.test_phase_handler import ModelCall


def _requests_timed() -> float:
    count = REGISTRY.get_sample_value(
        "voiceagent_llm_latency_seconds_count", {"provider": "openai"}
    )
    return count or 0.0


async def test_every_model_request_is_timed_with_its_provider_label(
    openai_server: OpenAiServer,  # noqa: F811
    chat: OpenAiChat,  # noqa: F811
) -> None:
    before = _requests_timed()
    call = ModelCall(chat)
    await call.say("i have aetna")
    await call.say("yes")
    assert openai_server.seen  # the model was asked
    assert _requests_timed() - before == len(openai_server.seen)
