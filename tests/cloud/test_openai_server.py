"""The loopback server speaks OpenAI's chat completions API to the official client.

Driven by ``openai.AsyncOpenAI`` with ``base_url`` only: no patched SDK internals. If these
pass, the client cannot tell the double from the service for the requests the agent makes.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.cloud.conftest import API_KEY
from tests.cloud.openai_server import OpenAiServer
from tests.cloud.scripted_model import Reply


def schema(name: str, prop: str, kind: str) -> Any:
    """A strict json_schema response format with an acknowledgement and one property."""
    properties = {"acknowledgement": {"type": "string"}, prop: {"type": [kind, "null"]}}
    return {
        "type": "json_schema",
        "json_schema": {
            "name": name,
            "strict": True,
            "schema": {
                "type": "object",
                "properties": properties,
                "required": list(properties),
                "additionalProperties": False,
            },
        },
    }


SCHEMA = schema("insurance_payer", "payer", "string")
ASK: Any = [
    {"role": "system", "content": "Extract the caller's insurance company."},
    {"role": "user", "content": "i have aetna"},
]
TOOL: Any = {
    "type": "function",
    "function": {
        "name": "lookup_payer",
        "parameters": {
            "type": "object",
            "properties": {"name": {"type": "string"}},
            "required": ["name"],
            "additionalProperties": False,
        },
    },
}


def client(server: OpenAiServer, key: str = API_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=5.0)


async def test_structured_output_without_streaming(openai_server: OpenAiServer) -> None:
    openai_server.behaviour.forced["insurance_payer"] = Reply(
        content={"acknowledgement": "", "payer": "Aetna"}
    )
    async with client(openai_server) as api:
        answer = await api.chat.completions.create(
            model="gpt-4o",
            messages=ASK,
            response_format=SCHEMA,
        )
    assert answer.choices[0].finish_reason == "stop"
    assert json.loads(answer.choices[0].message.content or "") == {
        "acknowledgement": "",
        "payer": "Aetna",
    }


async def test_streamed_structured_output_arrives_in_pieces(openai_server: OpenAiServer) -> None:
    async with client(openai_server) as api:
        stream = await api.chat.completions.create(
            model="gpt-4o",
            messages=[ASK[0], {"role": "user", "content": "two weeks"}],
            response_format=schema("complaint_duration_days", "duration_days", "number"),
            stream=True,
        )
        pieces = [c.choices[0].delta.content async for c in stream if c.choices[0].delta.content]
    assert len(pieces) > 3
    # The scripted model read "two weeks" with our own duration extractor.
    assert json.loads("".join(pieces))["duration_days"] == 14


async def test_a_tool_call_streams_its_arguments(openai_server: OpenAiServer) -> None:
    async with client(openai_server) as api:
        stream = await api.chat.completions.create(
            model="gpt-4o",
            messages=[ASK[0], {"role": "user", "content": "united healthcare"}],
            response_format=SCHEMA,
            tools=[TOOL],
            stream=True,
        )
        name, arguments, finish = "", "", None
        async for chunk in stream:
            for call in chunk.choices[0].delta.tool_calls or ():
                assert call.function is not None
                name += call.function.name or ""
                arguments += call.function.arguments or ""
            finish = chunk.choices[0].finish_reason or finish
    assert (name, json.loads(arguments), finish) == (
        "lookup_payer",
        {"name": "UnitedHealthcare"},
        "tool_calls",
    )


async def test_a_wrong_key_is_refused(openai_server: OpenAiServer) -> None:
    async with client(openai_server, key="sk-wrong") as api:
        with pytest.raises(openai.AuthenticationError):
            await api.chat.completions.create(model="gpt-4o", messages=ASK)


@pytest.mark.parametrize(
    ("status", "error"), [(429, openai.RateLimitError), (500, openai.InternalServerError)]
)
async def test_error_answers_reach_the_client_as_such(
    openai_server: OpenAiServer, status: int, error: type[Exception]
) -> None:
    openai_server.behaviour.fail_status = status
    async with client(openai_server) as api:
        with pytest.raises(error):
            await api.chat.completions.create(model="gpt-4o", messages=ASK, stream=True)


async def test_a_dropped_stream_is_an_error_not_a_short_answer(openai_server: OpenAiServer) -> None:
    openai_server.behaviour.disconnect_after_chunks = 3
    async with client(openai_server) as api:
        stream = await api.chat.completions.create(
            model="gpt-4o",
            messages=ASK,
            response_format=SCHEMA,
            stream=True,
        )
        with pytest.raises(openai.APIError):
            async for _ in stream:
                pass
