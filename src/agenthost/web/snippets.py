"""Ready-to-paste client snippets for both interfaces, with the user's agent filled in."""

from __future__ import annotations

from dataclasses import dataclass

API_PATH = "/api/agents/v1"
KEY_ENV = "AGENTHOST_API_KEY"


@dataclass(slots=True, frozen=True)
class Snippet:
    title: str
    language: str
    code: str


def api_base_url(public_base_url: str | None, request_base: str) -> str:
    """The configured public URL if any, else the URL this page was requested on."""
    root = (public_base_url or request_base).rstrip("/")
    return root if root.endswith(API_PATH) else root + API_PATH


def _python(base: str, agent: str) -> str:
    return f"""import os
from openai import OpenAI

client = OpenAI(base_url="{base}", api_key=os.environ["{KEY_ENV}"])

# Chat Completions
chat = client.chat.completions.create(
    model="{agent}",
    messages=[{{"role": "user", "content": "Hello!"}}],
)
print(chat.choices[0].message.content)

# Responses (streaming)
with client.responses.stream(model="{agent}", input="Hello!") as stream:
    for event in stream:
        if event.type == "response.output_text.delta":
            print(event.delta, end="", flush=True)
"""


def _node(base: str, agent: str) -> str:
    return f"""import OpenAI from "openai";

const client = new OpenAI({{ baseURL: "{base}", apiKey: process.env.{KEY_ENV} }});

// Chat Completions
const chat = await client.chat.completions.create({{
  model: "{agent}",
  messages: [{{ role: "user", content: "Hello!" }}],
}});
console.log(chat.choices[0].message.content);

// Responses
const response = await client.responses.create({{ model: "{agent}", input: "Hello!" }});
console.log(response.output_text);
"""


def _curl(base: str, agent: str) -> str:
    return f"""# Chat Completions
curl {base}/chat/completions \\
  -H "Authorization: Bearer ${KEY_ENV}" \\
  -H "Content-Type: application/json" \\
  -d '{{"model": "{agent}", "messages": [{{"role": "user", "content": "Hello!"}}]}}'

# Responses
curl {base}/responses \\
  -H "Authorization: Bearer ${KEY_ENV}" \\
  -H "Content-Type: application/json" \\
  -d '{{"model": "{agent}", "input": "Hello!"}}'
"""


def snippets(base: str, agent_id: str) -> list[Snippet]:
    return [
        Snippet("Python (openai)", "python", _python(base, agent_id)),
        Snippet("Node (openai)", "javascript", _node(base, agent_id)),
        Snippet("curl", "shell", _curl(base, agent_id)),
    ]
