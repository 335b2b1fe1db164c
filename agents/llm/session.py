"""The chat model behind the LLM brains: construction, token and cost accounting, the cost
ceiling, and record/replay of every HTTP exchange.

The model is langchain-openai's `ChatOpenAI`, so any OpenAI-compatible server works through
`OPENAI_BASE_URL` (vLLM, Ollama, llama.cpp, LiteLLM). Transient faults (429, 5xx, timeouts,
dropped connections) are retried by the OpenAI client with exponential backoff; a bad key or
an unknown model is a `ModelConfigError`: one line, non-zero exit, checkpoint intact.

Record and replay work at the HTTP layer (an httpx transport), so a cassette holds exactly
what went over the wire and a replay exercises the same client code with no network.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# US$ per 1M tokens (input, output). Published list prices where known; the gpt-5.x family
# is assumed to cost what gpt-5 did. Override with HL_PRICE_INPUT / HL_PRICE_OUTPUT.
PRICING = {
    "gpt-5": (1.25, 10.00),
    "gpt-5.4": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5.4-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "o4-mini": (1.10, 4.40),
}
DEFAULT_MODEL = "gpt-5.4"
MULTIMODAL_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-5", "o4")


class ModelConfigError(RuntimeError):
    """The model cannot be used at all (bad key, unknown model, missing configuration)."""


class CostLimitReached(RuntimeError):
    """The next model call would take the run past --max-cost-usd."""


class ReplayError(RuntimeError):
    """A replayed run asked for a request the cassette does not have."""


def price_of(model: str) -> tuple[float, float] | None:
    if os.environ.get("HL_PRICE_INPUT") and os.environ.get("HL_PRICE_OUTPUT"):
        return float(os.environ["HL_PRICE_INPUT"]), float(os.environ["HL_PRICE_OUTPUT"])
    if model in PRICING:
        return PRICING[model]
    # "gpt-4o-2024-08-06" -> "gpt-4o": the longest known prefix
    known = [name for name in PRICING if model.startswith(name)]
    return PRICING[max(known, key=len)] if known else None


def cost_of(model: str, input_tokens: int, output_tokens: int) -> float:
    price = price_of(model)
    if price is None:
        return 0.0
    return (input_tokens * price[0] + output_tokens * price[1]) / 1e6


# -- record / replay -------------------------------------------------------------------------


CASSETTE_VERSION = 1


class RecordingTransport(httpx.BaseTransport):
    """Passes requests through and appends each exchange to a JSONL cassette (fsynced)."""

    def __init__(self, path: Path, inner: httpx.BaseTransport | None = None, header: dict | None = None):
        self.path = Path(path)
        self.inner = inner or httpx.HTTPTransport()
        self.lock = threading.Lock()
        if header is not None and not (self.path.exists() and self.path.stat().st_size):
            # The run's settings first, so `--model replay:CASSETTE` alone reproduces the run.
            with open(self.path, "a") as f:
                f.write(json.dumps({"cassette": CASSETTE_VERSION, **header}) + "\n")

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        content = response.read()
        entry = {
            "request": {"method": request.method, "path": request.url.path, "body": _json_or_text(request.content)},
            "response": {"status": response.status_code, "body": _json_or_text(content),
                         "headers": {k: v for k, v in response.headers.items() if k.lower() in ("content-type", "retry-after")}},
        }  # fmt: skip
        with self.lock, open(self.path, "a") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return httpx.Response(response.status_code, headers=response.headers, content=content, request=request)


class ReplayTransport(httpx.BaseTransport):
    """Serves a cassette's responses in order, checking each request matches the recorded
    one (same path and messages), so a replay that diverges says where."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if not self.path.exists():
            raise ModelConfigError(f"no cassette at {self.path}")
        try:
            lines = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ModelConfigError(f"cassette {self.path} is corrupt: {err}") from None
        if not all(isinstance(e, dict) and ("request" in e or "cassette" in e) for e in lines):
            raise ModelConfigError(f"cassette {self.path} is corrupt: a line is neither an exchange nor a header")
        self.header = next((e for e in lines if "cassette" in e), {})
        self.entries = [e for e in lines if "request" in e]
        self.position = 0
        self.lock = threading.Lock()

    @property
    def model(self) -> str:
        for e in self.entries:
            body = e["request"]["body"]
            if isinstance(body, dict) and body.get("model"):
                return body["model"]
        return "replay"

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            if self.position >= len(self.entries):
                raise ReplayError(f"the run made more model requests than the cassette holds ({len(self.entries)})")
            entry = self.entries[self.position]
            self.position += 1
        body = _json_or_text(request.content)
        recorded = entry["request"]["body"]
        if _fingerprint(body) != _fingerprint(recorded):
            raise ReplayError(f"request {self.position} differs from the cassette: the replayed run diverged")
        response = entry["response"]
        content = response["body"] if isinstance(response["body"], str) else json.dumps(response["body"])
        return httpx.Response(response["status"], headers=response.get("headers") or {"content-type": "application/json"},
                              content=content.encode(), request=request)  # fmt: skip


def cassette_config(path: Path) -> dict:
    """The run settings a cassette was recorded with ({} for a cassette without a header)."""
    return ReplayTransport(Path(path).expanduser()).header.get("config") or {}


def cassette_preflight(path: Path) -> tuple[int, int]:
    """The (input, output) tokens of the recorded run's preflight check: a replay charges them
    as it charges every recorded reply, so its ledger matches the recording's."""
    tokens = ReplayTransport(Path(path).expanduser()).header.get("preflight") or (0, 0)
    return int(tokens[0]), int(tokens[1])


def _json_or_text(content: bytes):
    try:
        return json.loads(content or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return content.decode("utf-8", "replace")


def _fingerprint(body) -> str:
    """What must match for a replay to be the same conversation: the model, the sequence of
    message roles and the tools offered. (Tool results may differ in volatile details such
    as file names with timestamps, so their text is not compared.)"""
    if not isinstance(body, dict):
        return str(body)
    roles = [m.get("role") for m in body.get("messages", [])]
    return json.dumps([body.get("model"), roles, sorted(t["function"]["name"] for t in body.get("tools", []))])


# -- the session -----------------------------------------------------------------------------


@dataclass
class LLMSession:
    """One run's model: the chat model, what it has cost, and the cost ceiling."""

    model: str
    chat: object  # ChatOpenAI
    max_cost_usd: float | None = None
    spent_usd: float = 0.0  # the run's total so far (restored from the checkpoint on resume)
    tokens: int = 0
    calls: int = 0
    multimodal: bool = False
    unbilled: dict = field(default_factory=lambda: {"tokens": 0, "cost_usd": 0.0})  # not yet on a ledger row

    def check_cost(self, estimate_usd: float) -> None:
        if self.max_cost_usd is not None and self.spent_usd + estimate_usd > self.max_cost_usd:
            raise CostLimitReached(
                f"cost limit ${self.max_cost_usd:g} reached (spent ${self.spent_usd:.4f}; the next call would cost "
                f"about ${estimate_usd:.4f}); continue with --resume RUN_ID --max-cost-usd HIGHER"
            )

    max_output_tokens: int = 16384  # the reply's cap (sent as max_tokens), so the estimate bounds it

    def estimate(self, request_chars: int) -> float:
        """What the next call can cost at most: its input at ~4 characters per token (messages,
        tool-call arguments and tool schemas) and a reply of max_output_tokens."""
        return cost_of(self.model, request_chars // 4, self.max_output_tokens)

    def charge(self, input_tokens: int, output_tokens: int) -> tuple[int, float]:
        cost = cost_of(self.model, input_tokens, output_tokens)
        tokens = input_tokens + output_tokens
        self.spent_usd += cost
        self.tokens += tokens
        self.calls += 1
        self.unbilled["tokens"] += tokens
        self.unbilled["cost_usd"] += cost
        return tokens, cost

    def take_unbilled(self) -> dict:
        taken, self.unbilled = self.unbilled, {"tokens": 0, "cost_usd": 0.0}
        return taken


def open_session(model_arg: str, run_dir: Path, record: bool, max_cost_usd: float | None, spent_usd: float = 0.0,
                 timeout: float | None = None, max_retries: int | None = None, header: dict | None = None) -> LLMSession:  # fmt: skip
    """Build the chat model for `--model` (a model name, or replay:CASSETTE). `header`: more
    for a new cassette's first line (the preflight's tokens)."""
    from langchain_openai import ChatOpenAI

    timeout = timeout if timeout is not None else float(os.environ.get("HL_LLM_TIMEOUT", 120))
    max_output = int(os.environ.get("HL_LLM_MAX_OUTPUT", 16384))
    max_retries = max_retries if max_retries is not None else int(os.environ.get("HL_LLM_RETRIES", 4))
    if model_arg.startswith("replay:"):
        transport = ReplayTransport(Path(model_arg.split(":", 1)[1]).expanduser())
        model, base_url, api_key = transport.model, "http://cassette.invalid/v1", "replay"
    else:
        model = model_arg
        base_url = os.environ.get("OPENAI_BASE_URL") or None
        api_key = os.environ.get("OPENAI_API_KEY") or ("local" if base_url else None)
        if not api_key:
            raise ModelConfigError(f"--model {model} needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)")
        transport = httpx.HTTPTransport()
        if record:
            config = run_dir / "config.json"
            first = {"config": json.loads(config.read_text())} if config.exists() else {}
            transport = RecordingTransport(run_dir / "cassette.jsonl", transport, header={**first, **(header or {})})
    chat = ChatOpenAI(model=model, base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries,
                      max_tokens=max_output, http_client=httpx.Client(transport=transport, timeout=timeout))  # fmt: skip
    return LLMSession(model=model, chat=chat, max_cost_usd=max_cost_usd, spent_usd=spent_usd,
                      multimodal=images_for(model), max_output_tokens=max_output)  # fmt: skip


PREFLIGHT_PROMPT = "# preflight\nA connection check before a run starts. Answer with one word."


def preflight(model: str, timeout: float | None = None) -> tuple[int, int]:
    """One tiny request before a run starts, so a server that cannot be reached, a key it
    refuses or a model it does not know is one line and a non-zero exit within seconds (not
    retries and a silent fallback to builtin brains). Returns the (input, output) tokens it
    used, to be charged to the run. A server that is reachable but busy (429, 5xx) passes:
    the run's own retries and fallback handle faults in the middle of a run."""
    import openai
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_openai import ChatOpenAI

    timeout = timeout if timeout is not None else float(os.environ.get("HL_LLM_PREFLIGHT_TIMEOUT", 20))
    base_url = os.environ.get("OPENAI_BASE_URL") or None
    api_key = os.environ.get("OPENAI_API_KEY") or ("local" if base_url else None)
    if not api_key:
        raise ModelConfigError(f"--model {model} needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)")
    where = base_url or "api.openai.com"
    chat = ChatOpenAI(model=model, base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0, max_tokens=16)
    try:
        reply = chat.invoke([SystemMessage(PREFLIGHT_PROMPT), HumanMessage("ping")])
    except openai.APITimeoutError:
        raise ModelConfigError(f"the model server at {where} did not answer within {timeout:g} s "
                               "(HL_LLM_PREFLIGHT_TIMEOUT sets the wait)") from None  # fmt: skip
    except openai.APIConnectionError as err:
        raise ModelConfigError(f"cannot reach the model server at {where}: {_cause(err)}; check OPENAI_BASE_URL") from None
    except (openai.AuthenticationError, openai.PermissionDeniedError) as err:
        raise ModelConfigError(f"the model server at {where} refused the key (HTTP {err.status_code}: "
                               f"{_error_message(err)}); check OPENAI_API_KEY") from None  # fmt: skip
    except openai.NotFoundError as err:
        raise ModelConfigError(f"the model server at {where} does not know model {model!r} (HTTP 404: "
                               f"{_error_message(err)}); check --model and OPENAI_BASE_URL") from None  # fmt: skip
    except openai.BadRequestError as err:
        if "model" in _error_message(err).lower():
            raise ModelConfigError(f"the model server at {where} rejected model {model!r} (HTTP 400: "
                                   f"{_error_message(err)}); check --model") from None  # fmt: skip
        return 0, 0  # reached, key accepted, model known: only the tiny request was not to its liking
    except (openai.RateLimitError, openai.InternalServerError, openai.APIStatusError):
        return 0, 0  # reachable but busy: the run's retries and fallback deal with that
    usage = getattr(reply, "usage_metadata", None) or {}
    return int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))


def _cause(err: BaseException) -> str:
    """The innermost reason of a connection error (e.g. "Connection refused"), in one line."""
    while err.__cause__ is not None or err.__context__ is not None:
        err = err.__cause__ or err.__context__
    return " ".join(str(err).split())[:200] or type(err).__name__


def _error_message(err) -> str:
    body = err.body if isinstance(getattr(err, "body", None), dict) else {}
    message = body.get("message") or (body.get("error") or {}).get("message") if body else None
    return " ".join(str(message or err.message or err).split())[:200]


def images_for(model: str, setting: str | None = None) -> bool:
    """Whether the model is shown images: HL_LLM_IMAGES=on|off, or by default for model names
    known to read them (a local multimodal model needs HL_LLM_IMAGES=on)."""
    setting = (setting if setting is not None else os.environ.get("HL_LLM_IMAGES", "auto")).strip().lower()
    if setting in ("on", "1", "true", "yes"):
        return True
    if setting in ("off", "0", "false", "no"):
        return False
    return model.startswith(MULTIMODAL_PREFIXES)
