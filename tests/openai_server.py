"""A scripted OpenAI-compatible chat-completions server on localhost, for tests.

Real sockets and real HTTP: `ChatOpenAI(base_url=server.base_url)` talks to it exactly as it
talks to api.openai.com, vLLM or Ollama. What the "model" answers is a script per role: the
server tells roles apart by the first line of the system prompt (agents/prompts/<role>.md
starts with "# <role>"), and answers each role's requests with that role's next reply.

    server = ScriptedServer({"policy_writer": [call("write_file", path="policy.py", content=...),
                                               report(direction="...", rationale="...")]})
    with server:
        ... ChatOpenAI(base_url=server.base_url, api_key="test") ...

A reply is a tool call, several tool calls, plain text, a raw (malformed) tool call, or an
HTTP error status. Token usage is reported deterministically from the request and reply
sizes (about 4 characters per token), so token totals can be asserted.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    tool_calls: list[tuple[str, str]] = field(default_factory=list)  # (name, raw JSON arguments)
    content: str | None = None
    status: int = 200
    error: str = ""
    headers: dict = field(default_factory=dict)


def call(name: str, **arguments) -> Reply:
    """A reply that calls one tool with these arguments."""
    return Reply(tool_calls=[(name, json.dumps(arguments))])


def calls(*pairs: tuple[str, dict]) -> Reply:
    """A reply that calls several tools in one turn."""
    return Reply(tool_calls=[(name, json.dumps(args)) for name, args in pairs])


def raw_call(name: str, raw_arguments: str) -> Reply:
    """A tool call whose arguments are sent exactly as given (e.g. malformed JSON)."""
    return Reply(tool_calls=[(name, raw_arguments)])


def report(**fields) -> Reply:
    """The role's final structured report: a call of whatever tool the request forces
    (with_structured_output binds the report schema as a tool and forces it)."""
    return Reply(tool_calls=[("__forced__", json.dumps(fields))])


def _is_report(reply: Reply) -> bool:
    return bool(reply.tool_calls) and reply.tool_calls[0][0] == "__forced__"


def text(content: str) -> Reply:
    return Reply(content=content)


def error(status: int, message: str = "", headers: dict | None = None) -> Reply:
    return Reply(status=status, error=message or f"scripted HTTP {status}", headers=headers or {})


def tokens_of(text: str) -> int:
    return max(1, len(text) // 4)


class ScriptedServer:
    def __init__(self, scripts: dict[str, list[Reply]], default: Reply | None = None):
        self.scripts = {role: list(replies) for role, replies in scripts.items()}
        self.default = default  # answer for a role whose script ran out (None: HTTP 500 "script exhausted")
        self.requests: list[dict] = []  # every request body, in order, with the role it was routed to
        self.lock = threading.Lock()
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0}
        self.preflights = 0  # connection checks answered (not in `requests` unless scripted)

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> "ScriptedServer":
        handler = self._handler()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def remaining(self, role: str) -> int:
        return len(self.scripts.get(role, []))

    # -- answering -------------------------------------------------------------------------
    def role_of(self, body: dict) -> str:
        for message in body.get("messages", []):
            if message.get("role") in ("system", "developer"):
                content = message["content"] if isinstance(message["content"], str) else json.dumps(message["content"])
                first = content.strip().splitlines()[0] if content.strip() else ""
                return first.lstrip("# ").split()[0] if first.startswith("#") else "unknown"
        return "unknown"

    def next_reply(self, body: dict) -> tuple[str, Reply | None]:
        role = self.role_of(body)
        forced = isinstance(body.get("tool_choice"), dict)
        with self.lock:
            if role == "preflight" and not self.scripts.get(role):
                # graph.run's connection check before a run: answered, counted apart from the roles' requests.
                self.preflights += 1
                return role, Reply(content="OK")
            self.requests.append({"role": role, "body": body})
            script = self.scripts.get(role)
            if script:
                if _is_report(script[0]) and not forced:
                    # The report comes when it is asked for: until then the model says it is done.
                    return role, Reply(content="Done.")
                return role, script.pop(0)
        return role, self.default

    def completion(self, body: dict, reply: Reply) -> dict:
        message: dict = {"role": "assistant", "content": reply.content}
        if reply.tool_calls:
            forced = (body.get("tool_choice") or {}).get("function", {}).get("name") if isinstance(body.get("tool_choice"), dict) else None
            message["tool_calls"] = [
                {"id": f"call_{len(self.requests)}_{i}", "type": "function",
                 "function": {"name": forced if name == "__forced__" else name, "arguments": args}}
                for i, (name, args) in enumerate(reply.tool_calls)
            ]  # fmt: skip
        prompt = tokens_of(json.dumps(body.get("messages", [])))
        completion = tokens_of(json.dumps(message))
        with self.lock:
            self.usage["prompt_tokens"] += prompt
            self.usage["completion_tokens"] += completion
        return {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": 1_700_000_000,
            "model": body.get("model", "scripted"),
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if reply.tool_calls else "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }  # fmt: skip

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.endswith("/chat/completions"):
                    return self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                role, reply = server.next_reply(body)
                if reply is None:
                    return self._send(500, {"error": {"message": f"script for {role} exhausted", "type": "server_error"}})
                if reply.status != 200:
                    return self._send(reply.status, {"error": {"message": reply.error, "type": "scripted", "code": reply.status}},
                                      reply.headers)  # fmt: skip
                self._send(200, server.completion(body, reply))

            def _send(self, status: int, payload: dict, headers: dict | None = None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        return Handler
