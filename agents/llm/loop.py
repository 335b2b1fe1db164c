"""The LLM brain of a role: its prompt (agents/prompts/<role>.md plus the protocol rules)
through a tool-calling loop — a small LangGraph subgraph: model ⇄ tools, with an iteration
cap — ending in the role's structured report (pydantic, `method="function_calling"`), which
the role's own `finish` turns into exactly the state update its builtin brain returns, so
the main graph cannot tell them apart.

Faults: a model call that still fails after the client's retries counts as a failure; after
`max_failures` in a row the role falls back to its builtin brain and the trace says so. A
bad key or unknown model stops the run with one line (the checkpoint stays intact); the
cost ceiling stops it cleanly, resumable with a higher ceiling.
"""

from __future__ import annotations

import json
import operator
import os
import time
from typing import Annotated, TypedDict

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from pydantic import BaseModel

from agents.llm.session import CostLimitReached, LLMSession, ModelConfigError
from agents.llm.tools import Toolbox
from agents.registry import PROMPTS_DIR, BrainFailed, Role
from runtime.context import RunContext
from runtime.steps import record_llm_usage


class LoopState(TypedDict):
    messages: Annotated[list, add_messages]
    turns: int
    failures: Annotated[int, lambda old, new: new]
    tokens: Annotated[int, operator.add]
    cost_usd: Annotated[float, operator.add]


def _fault(err: BaseException) -> str | None:
    """Classify a model error: "fatal" (bad key, unknown model: no point retrying), "failure" (counts towards the
    fallback: 429/5xx/timeouts after the client's retries, rejected requests), or None."""
    import openai

    if isinstance(err, (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError)):
        return "fatal"
    if isinstance(err, (openai.APIStatusError, openai.APITimeoutError, openai.APIConnectionError)):
        return "failure"
    return None


def request_chars(messages: list, schema_chars: int = 0) -> int:
    """The size of a request: message texts, the arguments of earlier tool calls (a file the
    model wrote is sent back in every later request) and the tool schemas."""
    return schema_chars + sum(len(str(m.content)) + len(json.dumps(getattr(m, "tool_calls", None) or [], default=str))
                              for m in messages)  # fmt: skip


def tool_schema_chars(tools: list) -> int:
    from langchain_core.utils.function_calling import convert_to_openai_tool

    return len(json.dumps([convert_to_openai_tool(t) for t in tools], default=str))


def call_model(session: LLMSession, ctx: RunContext, role: str, runnable, messages: list, max_failures: int,
               schema_chars: int = 0) -> AIMessage:  # fmt: skip
    """One model call with the cost ceiling checked first; transient faults retried here
    (after the client's own retries) until `max_failures` in a row."""
    failures = 0
    while True:
        session.check_cost(session.estimate(request_chars(messages, schema_chars)))
        try:
            message = runnable.invoke(messages)
        except Exception as err:
            kind, fault = type(err).__name__, _fault(err)
            if fault == "fatal":
                raise ModelConfigError(f"the model server refused the request ({kind}: {_one_line(err)}); check --model, "
                                       "OPENAI_API_KEY and OPENAI_BASE_URL") from None  # fmt: skip
            if fault is None:
                raise
            failures += 1
            ctx.tracer.event("llm_error", role, error=f"{kind}: {_one_line(err)}", consecutive=failures)
            if failures >= max_failures:
                raise BrainFailed(f"{failures} model calls in a row failed ({kind})") from None
            time.sleep(min(8.0, 0.5 * 2**failures))
            continue
        raw = message["raw"] if isinstance(message, dict) else message
        usage = getattr(raw, "usage_metadata", None) or {}
        tokens, cost = session.charge(int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0)))
        calls = [c["name"] for c in getattr(raw, "tool_calls", [])] + [f"{c.get('name')} (invalid)" for c in getattr(raw, "invalid_tool_calls", [])]
        ctx.tracer.event("llm_call", role, model=session.model, tokens=tokens, input_tokens=int(usage.get("input_tokens", 0)),
                         output_tokens=int(usage.get("output_tokens", 0)), cost_usd=round(cost, 6), tool_calls=calls)  # fmt: skip
        return message


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:300]


def build_tool_loop(session: LLMSession, ctx: RunContext, role: str, toolbox: Toolbox, tools: list, cap: int, max_failures: int):
    """model ⇄ tools until the model stops calling tools or `cap` model turns are used."""
    by_name = {t.name: t for t in tools}
    model = session.chat.bind_tools(tools) if tools else session.chat
    schema_chars = tool_schema_chars(tools) if tools else 0

    def model_node(state: LoopState) -> dict:
        message = call_model(session, ctx, role, model, state["messages"], max_failures, schema_chars)
        usage = getattr(message, "usage_metadata", None) or {}
        return {"messages": [message], "turns": state["turns"] + 1,
                "tokens": int(usage.get("total_tokens", 0))}  # fmt: skip

    def tools_node(state: LoopState) -> dict:
        message: AIMessage = state["messages"][-1]
        replies: list = []
        for call in message.tool_calls:
            replies.append(ToolMessage(run_tool(ctx, role, by_name, call["name"], call["args"]), tool_call_id=call["id"]))
        for bad in message.invalid_tool_calls:
            # Malformed arguments: tell the model exactly what was wrong so it can repair the call.
            error = f"error: the arguments of {bad.get('name')} were not valid JSON ({bad.get('error') or 'parse error'}): " \
                    f"{str(bad.get('args'))[:200]!r}. Call the tool again with a JSON object matching its schema."
            ctx.tracer.event("tool", role, tool=bad.get("name"), error="malformed arguments")
            replies.append(ToolMessage(error, tool_call_id=bad.get("id") or "invalid"))
        if toolbox.images and session.multimodal:
            replies.append(HumanMessage([{"type": "text", "text": "The contact sheet you asked for:"}] +
                                        [{"type": "image_url", "image_url": {"url": url}} for url in toolbox.images]))  # fmt: skip
        toolbox.images.clear()
        return {"messages": replies}

    def after_model(state: LoopState) -> str:
        last = state["messages"][-1]
        wants_tools = isinstance(last, AIMessage) and (last.tool_calls or last.invalid_tool_calls)
        return "tools" if wants_tools and state["turns"] < cap else END

    graph = StateGraph(LoopState)
    graph.add_node("model", model_node)
    graph.add_node("tools", tools_node)
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", after_model, {"tools": "tools", END: END})
    graph.add_edge("tools", "model")
    return graph.compile()


def run_tool(ctx: RunContext, role: str, by_name: dict, name: str, args: dict) -> str:
    """Run one tool call; any error becomes the tool's answer (the model sees it and can retry)."""
    started = time.time()
    if name not in by_name:
        result, error = f"error: no tool named {name!r} for the {role}; available: {', '.join(sorted(by_name))}", "unknown tool"
    else:
        try:
            result, error = str(by_name[name].invoke(args)), None
        except Exception as err:  # refusals, validation errors, crashes in tools: all go back to the model
            result, error = f"error: {type(err).__name__}: {_one_line(err)}", _one_line(err)
    ctx.tracer.event("tool", role, tool=name, args=_short(args), seconds=round(time.time() - started, 3),
                     error=error, result=result[:200])  # fmt: skip
    return result


def _short(args: dict) -> dict:
    return {k: (v[:80] + "…" if isinstance(v, str) and len(v) > 80 else v) for k, v in (args or {}).items()}


# -- running a role ----------------------------------------------------------------------------


def system_prompt(role: Role) -> str:
    return role.prompt_text().strip() + "\n\n" + (PROMPTS_DIR / "_protocol.md").read_text().strip() + "\n"


def task_message(role: Role, state: dict, ctx: RunContext) -> str:
    """What the role needs to know about the run right now."""
    best = state.get("best") or {}
    lines = [
        f"Game: {ctx.game.name} · obs mode: {ctx.config.obs_mode} · protocol: {ctx.config.protocol} · "
        f"actions: {_actions(ctx)}",
        f"Env steps used: {ctx.meter.used_steps:,} of {ctx.config.budget:,} (held for the final holdout: {ctx.meter.reserved:,})",
        f"Iteration {state.get('iteration', 0)}; best dev score so far: {best.get('score', 'none')}",
    ]
    if state.get("diagnosis"):
        d = state["diagnosis"]
        lines.append(f"Last diagnosis: {d.get('what')} | hypothesis: {d.get('hypothesis')} | direction: {d.get('direction') or '(none)'}")
    history = state.get("history") or []
    if history:
        lines.append("Recent directions: " + "; ".join(f"{h['direction']} → {h['outcome']} ({h['delta']:+g})" for h in history[-6:]))
    if state.get("evaluation"):
        e = state["evaluation"]
        lines.append(f"Last evaluation: trial {e['trial']} {e['status']} scores {e.get('scores')}")
    lines.append(f"Your tools: {', '.join(role.tools)}. Files are relative to hs/.")
    return "\n".join(lines)


def _actions(ctx: RunContext) -> str:
    meanings = ctx.family.action_meanings(ctx.game)
    return ", ".join(f"{i}={n}" for i, n in enumerate(meanings)) if meanings else str(ctx.family.action_space(ctx.game))


def run_llm_role(role: Role, state: dict, ctx: RunContext) -> dict:
    session: LLMSession = ctx.llm
    session.spent_usd = max(session.spent_usd, float((state.get("usage") or {}).get("cost_usd", 0.0)))
    tokens_before, cost_before = session.tokens, session.spent_usd
    extra = role.prepare(state, ctx) if role.prepare else {}
    toolbox = Toolbox(ctx, {**state, **extra}, role.name)
    cap = int(os.environ.get("HL_LLM_TURNS", 24))
    max_failures = int(os.environ.get("HL_LLM_MAX_FAILURES", 3))

    def usage() -> dict:
        return {"tokens": session.tokens - tokens_before, "cost_usd": round(session.spent_usd - cost_before, 6)}

    def bill_leftover() -> None:
        # Tokens not carried by an evaluation row this role made get a row of their own, so
        # the ledger holds every token the run spent.
        left = session.take_unbilled()
        if left["tokens"] or left["cost_usd"]:
            record_llm_usage(ctx, role.name, left["tokens"], left["cost_usd"])

    try:
        loop = build_tool_loop(session, ctx, role.name, toolbox, toolbox.tools(role.tools), cap, max_failures)
        messages = [SystemMessage(system_prompt(role)), HumanMessage(task_message(role, {**state, **extra}, ctx))]
        out = loop.invoke({"messages": messages, "turns": 0, "failures": 0, "tokens": 0, "cost_usd": 0.0},
                          {"recursion_limit": 4 * cap + 10})  # fmt: skip
        report = final_report(session, ctx, role, out["messages"], max_failures)
        update = role.finish(report, {**state, **extra, **_toolbox_state(toolbox)}, ctx)
    except CostLimitReached as err:
        ctx.hs.rollback()  # a half-made change is not kept; the resumed run redoes this role
        ctx.tracer.event("cost_stop", role.name, message=str(err))
        bill_leftover()
        return {"stop_reason": str(err), "paused_at": role.name, "evaluation": None, "usage": usage(),
                "trace_summary": "stopped: cost limit"}  # fmt: skip
    except BrainFailed as err:
        ctx.tracer.event("fallback", role.name, reason=str(err), to="builtin")
        ctx.say(f"{role.name}: LLM brain failed ({err}); falling back to the builtin brain")
        if role.rollback_on_fallback:
            ctx.hs.rollback()
        update = role.builtin(state, ctx) or {}
        update["trace_summary"] = f"fallback to builtin: {err}"
        bill_leftover()
        update["usage"] = usage()
        return update
    bill_leftover()
    update["usage"] = usage()
    return update


def _toolbox_state(toolbox: Toolbox) -> dict:
    return {k: toolbox.state[k] for k in ("probe", "evaluation") if k in toolbox.state}


def final_report(session: LLMSession, ctx: RunContext, role: Role, messages: list, max_failures: int) -> BaseModel:
    schema = role.report
    role = role.name
    structured = session.chat.with_structured_output(schema, method="function_calling", include_raw=True)
    ask = HumanMessage(f"Your work is done. Give your report now by calling {schema.__name__}.")
    conversation = _answer_dangling_calls(messages) + [ask]
    schema_chars = tool_schema_chars([schema])
    for _ in range(2):
        out = call_model(session, ctx, role, structured, conversation, max_failures, schema_chars)
        if out.get("parsed") is not None:
            return out["parsed"]
        error = _one_line(out.get("parsing_error") or "no report")
        ctx.tracer.event("tool", role, tool=schema.__name__, error=f"malformed report: {error}")
        raw = out["raw"]
        conversation = conversation + [raw] + [ToolMessage(f"error: the report did not match the schema ({error}); call "
                                                           f"{schema.__name__} again with valid arguments", tool_call_id=c["id"])
                                               for c in (raw.tool_calls or []) + (raw.invalid_tool_calls or [])]  # fmt: skip
    raise BrainFailed("the model gave no valid report")


def _answer_dangling_calls(messages: list) -> list:
    """The loop may stop at its cap with tool calls unanswered; the API needs every call answered."""
    last = messages[-1] if messages else None
    if isinstance(last, AIMessage) and (last.tool_calls or last.invalid_tool_calls):
        return messages + [ToolMessage("not run: the turn limit was reached", tool_call_id=c.get("id") or "invalid")
                           for c in list(last.tool_calls) + list(last.invalid_tool_calls)]  # fmt: skip
    return messages




def describe_tools(names: list[str]) -> str:
    """One line per tool (for docs and the closing note)."""
    return "\n".join(f"- `{n}`: {(getattr(Toolbox, n).__doc__ or '').strip().splitlines()[0]}" for n in names)
