"""``langchain-openai``: invoke, stream, bind_tools, with_structured_output (each method)."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from chat2api.sim import SimServer, mint_access_token
from chat2api.sim.shaped import schema_instance
from servers import ServiceServer


class Person(BaseModel):
    """Someone mentioned in the text."""

    name: str = Field(description="Their name")
    age: int = Field(description="Their age in years")


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@pytest.fixture
def model(app: ServiceServer) -> ChatOpenAI:
    """ChatOpenAI pointed at chat2api."""
    return ChatOpenAI(
        model="gpt-4o",
        base_url=app.openai_base_url,
        api_key=mint_access_token(),  # type: ignore[arg-type]
        max_retries=0,
    )


def test_invoke_and_stream(model: ChatOpenAI, sim: SimServer) -> None:
    """invoke() returns the text; stream() yields it in pieces that add up."""
    reply = model.invoke("say exactly: hello from langchain")
    assert isinstance(reply, AIMessage) and reply.content == "hello from langchain"
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] > 0
    pieces = [chunk.content for chunk in model.stream("say exactly: streamed words here")]
    assert "".join(str(p) for p in pieces) == "streamed words here"


def test_bind_tools(model: ChatOpenAI, sim: SimServer) -> None:
    """bind_tools: the model's call comes back as tool_calls, and the result goes back in."""
    with_tools = model.bind_tools([add])
    ask = HumanMessage("What is 2 + 3? #sim:call=add")
    reply = with_tools.invoke([ask])
    assert isinstance(reply, AIMessage)
    (call,) = reply.tool_calls
    assert call["name"] == "add" and call["args"] == {"a": 42, "b": 42}
    sim.state.script("It is 84.")
    result = ToolMessage(str(add.invoke(call["args"])), tool_call_id=call["id"])
    final = with_tools.invoke([ask, reply, result])
    assert final.content == "It is 84."
    assert "84" in sim.state.last_prompt()[-1][1]


@pytest.mark.parametrize("method", ["json_schema", "function_calling", "json_mode"])
def test_with_structured_output(model: ChatOpenAI, sim: SimServer, method: str) -> None:
    """with_structured_output gives the pydantic object with every method."""
    if method == "function_calling":
        sim.state.script(
            '<tool_call>\n{"name": "Person", "arguments": {"name": "Ada", "age": 36}}\n</tool_call>'
        )
    elif method == "json_mode":
        sim.state.script('{"name": "Ada", "age": 36}')
    structured = model.with_structured_output(Person, method=method)  # type: ignore[arg-type]
    person = structured.invoke("Ada is 36. Extract her. #sim:json=schema")
    assert isinstance(person, Person)
    if method == "json_schema":
        assert person.model_dump() == schema_instance(Person.model_json_schema())
    else:
        assert person == Person(name="Ada", age=36)
