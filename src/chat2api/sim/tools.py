"""Generated-content turns: `#sim:image`, `#sim:image_async`, `#sim:sandbox`, `#sim:cite`.

`generate(...)` takes the plain turn the simulator would stream and returns it
with the tool messages (`ToolStep`s), the answer text and metadata of the
asked-for kind, registering the files it produced in the state. The texts and
bytes come from `chat2api.sim.generated` (pure functions).
"""

from __future__ import annotations

import copy
import dataclasses
import secrets
import uuid
from typing import Any

from chat2api.sim.files import (
    ImageTask,
    SandboxOutput,
    generated_file,
    image_parts_of,
    new_file_id,
    new_sediment_id,
    pointer_file_id,
)
from chat2api.sim.generated import (
    DALLE_TOOL,
    IMAGE_GEN_TOOL,
    SANDBOX_FILE_NAME,
    SANDBOX_PATH,
    ImageRequest,
    citations,
    cite_text,
    content_references,
    dalle_code,
    generated_png,
    image_gen_code,
    image_gen_id,
    image_reply_text,
    image_request,
    image_seed,
    image_title,
    sandbox_code,
    sandbox_csv,
    sandbox_output,
    sandbox_reply,
)
from chat2api.sim.records import ToolStep, Turn
from chat2api.sim.replies import split_chunks
from chat2api.sim.state import SimState

GENERATION_HEIGHT_PATH = "/parts/0/metadata/generation/height"


def wants_picture(body: dict[str, Any], messages: object) -> bool:
    """`system_hints` holds `picture_v2`, in the body or a request message's metadata."""
    hints = [body.get("system_hints")]
    for message in messages if isinstance(messages, list) else []:
        metadata = message.get("metadata") if isinstance(message, dict) else None
        if isinstance(metadata, dict):
            hints.append(metadata.get("system_hints"))
    return any(isinstance(h, list) and "picture_v2" in h for h in hints)


def _code_step(recipient: str, language: str, text: str, words: int) -> ToolStep:
    return ToolStep(
        id=str(uuid.uuid4()),
        role="assistant",
        name=None,
        recipient=recipient,
        content={
            "content_type": "code",
            "language": language,
            "response_format_name": None,
            "text": text,
        },
        metadata={},
        text_chunks=tuple(split_chunks(text, words)),
    )


def dalle_pointer(file_id: str, req: ImageRequest, size_bytes: int) -> dict[str, Any]:
    """The `image_asset_pointer` part of a DALL·E tool message (spec 1.10)."""
    return {
        "content_type": "image_asset_pointer",
        "asset_pointer": f"file-service://{file_id}",
        "size_bytes": size_bytes,
        "width": req.width,
        "height": req.height,
        "fovea": 512,
        "metadata": {
            "dalle": {
                "gen_id": image_gen_id(req.prompt),
                "prompt": req.prompt,
                "seed": image_seed(req.prompt),
                "parent_gen_id": None,
                "edit_op": None,
                "serialization_title": "DALL-E generation metadata",
            },
            "gizmo": None,
            "generation": None,
            "sanitized": False,
        },
    }


def image_gen_pointer(
    file_id: str, req: ImageRequest, size_bytes: int, shown_height: int
) -> dict[str, Any]:
    """The `image_asset_pointer` part of a picture_v2 tool message (`generation.height` grows)."""
    return {
        "content_type": "image_asset_pointer",
        "asset_pointer": f"sediment://{file_id}",
        "size_bytes": size_bytes,
        "width": req.width,
        "height": req.height,
        "fovea": None,
        "metadata": {
            "dalle": None,
            "gizmo": None,
            "generation": {
                "gen_id": image_gen_id(req.prompt),
                "gen_size": "image",
                "gen_size_v2": req.size,
                "seed": None,
                "parent_gen_id": None,
                "height": shown_height,
                "width": req.width,
                "transparent_background": False,
                "orientation": req.orientation,
                "serialization_title": "Image Generation metadata",
            },
            "container_pixel_height": req.height,
            "container_pixel_width": req.width,
            "sanitized": False,
        },
    }


def generate(
    state: SimState,
    turn: Turn,
    kind: str,
    prompt: str,
    owner: str,
    messages: object,
) -> Turn:
    """The turn with the generated content of `kind`; files are registered in `state.files`."""
    words = state.config.chunk_words
    cid = turn.conversation_id
    plain = dataclasses.replace(turn, thought_chunks=None)
    if kind == "cite":
        text = cite_text(prompt)
        return dataclasses.replace(
            plain,
            chunks=tuple(split_chunks(text, words)),
            answer_extra={
                "citations": citations(text),
                "content_references": content_references(text, state.config.cite_sources),
            },
        )
    if kind == "sandbox":
        code = _code_step("python", "python", sandbox_code(), words)
        output = ToolStep(
            id=str(uuid.uuid4()),
            role="tool",
            name="python",
            recipient="all",
            content={"content_type": "execution_output", "text": sandbox_output()},
            metadata={
                "is_complete": True,
                "aggregate_result": {
                    "status": "success",
                    "code": sandbox_code(),
                    "final_expression_output": None,
                    "in_kernel_exception": None,
                    "messages": [
                        {
                            "message_type": "stream",
                            "stream_name": "stdout",
                            "text": sandbox_output(),
                        }
                    ],
                },
            },
        )
        data = sandbox_csv()
        record = generated_file(
            file_id=new_file_id(),
            owner=owner,
            file_name=SANDBOX_FILE_NAME,
            data=data,
            mime_type="text/csv",
            kind="sandbox",
            use_case="ace_upload",
            conversation_id=cid,
            message_id=turn.answer_id,
        )
        state.add_file(record)
        state.sandbox_outputs[(cid, turn.answer_id, SANDBOX_PATH)] = SandboxOutput(
            cid, owner, turn.answer_id, SANDBOX_PATH, record.file_id
        )
        return dataclasses.replace(
            plain,
            steps=(code, output),
            chunks=tuple(split_chunks(sandbox_reply(), words)),
            tool_name="python",
        )

    req = image_request(prompt)
    png = generated_png(req.prompt, req.width, req.height)
    state.stats.images_generated += 1
    if kind == "image":
        file_id = new_file_id()
        tool = ToolStep(
            id=str(uuid.uuid4()),
            role="tool",
            name=DALLE_TOOL,
            recipient="all",
            content={
                "content_type": "multimodal_text",
                "parts": [dalle_pointer(file_id, req, len(png))],
            },
            metadata={},
        )
        state.add_file(
            generated_file(
                file_id=file_id,
                owner=owner,
                file_name=f"{image_gen_id(req.prompt)}.png",
                data=png,
                mime_type="image/png",
                kind="dalle",
                use_case="multimodal",
                conversation_id=cid,
                message_id=tool.id,
            )
        )
        return dataclasses.replace(
            plain,
            steps=(_code_step(DALLE_TOOL, "json", dalle_code(req), words), tool),
            chunks=tuple(split_chunks(image_reply_text(req.prompt), words)),
            tool_name=DALLE_TOOL,
        )

    # picture_v2: the tool message is still in_progress when the stream ends.
    file_id = new_sediment_id()
    referenced = [
        fid
        for m in (messages if isinstance(messages, list) else [])
        for part in image_parts_of(m)
        if (fid := pointer_file_id(part.get("asset_pointer"))) is not None
    ]
    tool = ToolStep(
        id=str(uuid.uuid4()),
        role="tool",
        name=IMAGE_GEN_TOOL,
        recipient="all",
        content={
            "content_type": "multimodal_text",
            "parts": [image_gen_pointer(file_id, req, len(png), max(1, req.height // 4))],
        },
        metadata={
            "async_task_type": "image_gen",
            "image_gen_task_id": "task_" + secrets.token_hex(12),
            "image_gen_title": image_title(req.prompt),
            "image_gen_async": True,
            "trigger_async_ux": True,
        },
        pending=True,
        progress=((GENERATION_HEIGHT_PATH, max(1, req.height // 2)),),
    )
    state.add_file(
        generated_file(
            file_id=file_id,
            owner=owner,
            file_name=f"{image_gen_id(req.prompt)}.png",
            data=png,
            mime_type="image/png",
            kind="image_gen",
            use_case="multimodal",
            conversation_id=cid,
            message_id=tool.id,
            ready=False,
        )
    )
    return dataclasses.replace(
        plain,
        steps=(_code_step(IMAGE_GEN_TOOL, "json", image_gen_code(req, referenced), words), tool),
        chunks=(),
        answerless=True,
        tool_name=IMAGE_GEN_TOOL,
    )


def image_task(turn: Turn, owner: str) -> ImageTask | None:
    """The running task of an answerless picture_v2 turn (None for other turns)."""
    if not turn.answerless or not turn.steps:
        return None
    tool = turn.steps[-1]
    final = copy.deepcopy(tool.content)
    part = final["parts"][0]
    part["metadata"]["generation"]["height"] = part["height"]
    file_id = pointer_file_id(part["asset_pointer"]) or ""
    return ImageTask(
        conversation_id=turn.conversation_id,
        owner=owner,
        message_id=tool.id,
        file_id=file_id,
        finished_message={"status": "finished_successfully", "content": final},
    )
