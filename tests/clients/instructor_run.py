"""instructor against chat2api, run in instructor's own venv by test_instructor.py.

Prints one JSON object: what each mode extracted. Base URL and key in the
environment (OPENAI_BASE_URL, OPENAI_API_KEY).
"""

from __future__ import annotations

import json

import instructor
import openai
from pydantic import BaseModel


class User(BaseModel):
    name: str
    age: int


def main() -> None:
    client = openai.OpenAI(max_retries=0)
    out = {"versions": {"instructor": instructor.__version__, "openai": openai.__version__}}
    for mode in (instructor.Mode.TOOLS, instructor.Mode.JSON_SCHEMA):
        patched = instructor.from_openai(client, mode=mode)
        user = patched.chat.completions.create(
            model="gpt-4o",
            response_model=User,
            max_retries=0,
            messages=[{"role": "user", "content": "Ada is 36. #sim:json=schema #sim:call=User"}],
        )
        out[mode.value] = user.model_dump()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
