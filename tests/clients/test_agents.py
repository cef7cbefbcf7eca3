"""``openai-agents``: a function tool and a pydantic output_type, on both model APIs."""

from __future__ import annotations

import asyncio

import pytest
from agents import (
    Agent,
    Model,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    RunResult,
    function_tool,
    set_tracing_disabled,
)
from agents.items import ToolCallOutputItem
from openai import AsyncOpenAI
from pydantic import BaseModel

from chat2api.sim import SimServer, mint_access_token
from chat2api.sim.shaped import schema_instance
from servers import ServiceServer

set_tracing_disabled(True)  # traces would be uploaded to OpenAI


class Report(BaseModel):
    city: str
    degrees: int


@function_tool
def get_weather(city: str) -> str:
    """The current temperature in a city."""
    return f"{city}: 3 degrees"


@pytest.mark.parametrize("api", ["responses", "chat_completions"])
def test_tool_then_typed_output(app: ServiceServer, sim: SimServer, api: str) -> None:
    """The agent calls its tool, reads the result, and ends with a Report object."""

    async def run() -> RunResult:
        async with AsyncOpenAI(
            base_url=app.openai_base_url, api_key=mint_access_token(), max_retries=0
        ) as client:  # closed inside the run's own loop
            model: Model = (
                OpenAIResponsesModel(model="gpt-4o", openai_client=client)
                if api == "responses"
                else OpenAIChatCompletionsModel(model="gpt-4o", openai_client=client)
            )
            agent = Agent(
                name="weather",
                instructions="Answer with a weather report.",
                tools=[get_weather],
                output_type=Report,
                model=model,
            )
            return await Runner.run(
                agent, "Weather in Oslo? #sim:call=get_weather #sim:json=schema"
            )

    result = asyncio.run(run())
    outputs = [item.output for item in result.new_items if isinstance(item, ToolCallOutputItem)]
    (output,) = outputs
    assert output.endswith(": 3 degrees")
    assert isinstance(result.final_output, Report)
    assert result.final_output.model_dump() == schema_instance(Report.model_json_schema())
    assert sim.state.stats.conversations == 2
    assert ": 3 degrees" in sim.state.last_prompt()[-1][1]
