"""The agent loop: model → server tools → model … until an answer, a caller call or a limit.

`AgentRunner.run` yields `RunEvent`s. Caller-side tool calls are passed through and end the
run; server-side calls are run here (in parallel unless `parallel_tool_calls` is false) and
reported as `ServerTool*` events, never as calls for the caller. A model step that asks for
both kinds runs its server calls (their events are emitted, so a stored response keeps
them) and then ends the run with the caller's calls. Limits (steps, deadline, argument
bytes, `max_tool_calls`) end the run as `incomplete` with a reason; nothing waits forever.
Before each model call the run's budget admits it (lowering its output cap to what the
caller can pay, or refusing it); after it, the budget validates the usage the upstream
reported. `RunState` records that usage as it arrives so the caller can settle the ledger
even when the client goes away mid-run.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import cast

from agenthost import agent_params
from agenthost.conversation import (
    AgentSpec,
    Message,
    ModelRequest,
    RunRequest,
    ToolCall,
    ToolChoice,
)
from agenthost.errors import ProviderError, UpstreamTimeout, UpstreamUnavailable
from agenthost.events import (
    Finish,
    ModelEvent,
    ReasoningDelta,
    RunEvent,
    RunFinished,
    ServerToolResult,
    ServerToolStart,
    StepFinished,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageReport,
)
from agenthost.observability import metrics, tracing
from agenthost.providers.base import Provider
from agenthost.providers.upstream_errors import mask_secret
from agenthost.runtime import fallbacks, structured
from agenthost.runtime.budget import CallBudget, Unmetered
from agenthost.runtime.circuit import Breakers, Ticket
from agenthost.runtime.context import initial_messages, model_request
from agenthost.runtime.graph import HANDOFF_SERVER, SUBAGENT_SERVER, Graph, graph_tools
from agenthost.runtime.handoffs import handed_over, handoff_result, last_handoff
from agenthost.runtime.limits import limits_for
from agenthost.runtime.steps import (
    LimitReached,
    Step,
    assistant_message,
    check_caller_tools,
    finished,
    offered_tools,
    tool_message,
)
from agenthost.runtime.subagents import all_or_none, run_subagent
from agenthost.runtime.tools import Caller, NoServerTools, ServerTool, ServerTools, ToolResult
from agenthost.runtime.tracing import (
    end_model_call,
    model_call_attributes,
    tool_call_attributes,
)
from agenthost.settings import RunLimits

# An upstream that streams more than this many characters per token of the output cap
# it was sent ignores the cap: its call is ended (no real token is this long on average).
MAX_CHARS_PER_CAPPED_TOKEN = 32


@dataclass(slots=True)
class RunState:
    """What a run has consumed so far; read by billing when the run ends or is abandoned."""

    steps: list[StepFinished] = field(default_factory=list)
    pending_output_chars: int = 0  # text of the current model call, before its usage arrives
    model: str = ""
    provider: str = ""  # the current model call's (a fallback's, when one serves it)
    # "provider:model" that served the run's first model call (set at its first token).
    served_by: str = ""
    budget: CallBudget = field(default_factory=Unmetered)
    # Events of the current upstream read still to be yielded, all already in memory: a
    # consumer may hold its output until this is 0 and write it at once (fewer writes
    # under load). Never counts an event that waits on I/O.
    ready_events: int = 0
    # Agent graphs: the agent whose calls these are, and the runs it started (sub-agents)
    # or passed the conversation to (a handoff); each has its own budget and steps.
    agent_id: str = ""
    graph: Graph | None = None
    children: list[RunState] = field(default_factory=list)

    @property
    def usage(self) -> Usage:
        """What this run and every run below it used."""
        total = Usage()
        for step in self.steps:
            total.add(step.usage)
        for child in self.children:
            total.add(child.usage)
        return total

    def tree(self) -> list[RunState]:
        """This run and every run below it."""
        return [self, *(state for child in self.children for state in child.tree())]

    def child(self, agent: AgentSpec) -> RunState:
        """A run of `agent` below this one, charged through its own budget."""
        graph = self.graph or Graph.single(agent)
        state = RunState(model=agent.model, budget=graph.budget_for(agent), graph=graph)
        state.agent_id = agent.id
        self.children.append(state)
        return state

    def close_pending(self) -> None:
        """Record a model call cut off before its usage arrived, at the budget's estimate
        (in every run of the tree)."""
        if self.pending_output_chars:
            usage = self.budget.settle(None, self.pending_output_chars)
            done = StepFinished(len(self.steps) + 1, self.model, usage, self.provider)
            self.steps.append(done)
            self.pending_output_chars = 0
        for child in self.children:
            child.close_pending()


@dataclass(slots=True)
class _Run:
    """Everything one run carries from step to step."""

    agent: AgentSpec
    request: RunRequest
    provider: Provider
    server: dict[str, ServerTool]
    limits: RunLimits
    state: RunState
    deadline: float
    messages: list[Message]
    tool_choice: ToolChoice
    server_calls_made: int = 0
    api_key: str | None = None  # the caller's key for a user-provided provider
    # Agent graphs: the run at the top of the tree (its usage is the tree's), how deep
    # this run is, who it runs for, and the agent a handoff of this step passes to.
    root: RunState | None = None
    depth: int = 0
    caller: Caller | None = None
    handoff: str | None = None
    routes: list[fallbacks.Route] = field(default_factory=list)  # the agent's, in order

    @property
    def graph(self) -> Graph:
        assert self.state.graph is not None
        return self.state.graph

    @property
    def tree_usage(self) -> Usage:
        return (self.root or self.state).usage

    def next_call(self) -> ModelRequest:
        tools = offered_tools(self.server, self.request, self.tool_choice)
        call = model_request(self.agent, self.request, self.messages, tools, self.tool_choice)
        if call.max_output_tokens is None:
            call.max_output_tokens = self.provider.default_max_output_tokens
        call.deadline = self.deadline
        call.api_key = self.api_key
        return call

    def incomplete(self, reason: str) -> RunFinished:
        return RunFinished("incomplete", "length", self.tree_usage, reason)


@dataclass(slots=True)
class _Opened:
    """One upstream attempt of a model call: whether its first token has arrived."""

    route: fallbacks.Route
    ticket: Ticket
    first_token: bool = False


class AgentRunner:
    """Runs agents; one instance per process, shared by every request."""

    def __init__(
        self,
        providers: dict[str, Provider],
        limits: RunLimits,
        server_tools: ServerTools | None = None,
        disabled: dict[str, str] | None = None,
        breakers: Breakers | None = None,
    ) -> None:
        self._providers = providers
        self._breakers = breakers or Breakers({})
        self._disabled = disabled or {}  # provider name -> the unset variable
        self._limits = limits
        self._server_tools = server_tools or NoServerTools()

    @property
    def server_tools(self) -> ServerTools:
        """The MCP tools runs use (agent forms list them)."""
        return self._server_tools

    async def aclose(self) -> None:
        """Close pooled tool connections (MCP sessions and their processes)."""
        close = getattr(self._server_tools, "aclose", None)
        if close is not None:
            await close()

    def output_cap(self, agent: AgentSpec, request: RunRequest) -> int:
        """The run's effective output cap: the request's capped by the agent's, else the
        agent's, else the provider's default. Billing may lower it per call."""
        agent_params.check(agent.params)  # a value stored before it was checked at save
        capped = model_request(agent, request, [], [], ToolChoice()).max_output_tokens
        return capped or self._routes(agent)[0].provider.default_max_output_tokens

    def _routes(self, agent: AgentSpec) -> list[fallbacks.Route]:
        """The upstreams that may serve the agent's calls, in order: its own provider, or
        its first running fallback when its own is disabled or gone (fallbacks.routes);
        with none, the agent's own provider error."""
        candidates = fallbacks.routes(agent, self._providers)
        if not candidates:
            self.provider_for(agent)  # raises: disabled or not configured
        return candidates

    def provider_for(self, agent: AgentSpec) -> Provider:
        provider = self._providers.get(agent.provider)
        if provider is None and agent.provider in self._disabled:
            raise UpstreamUnavailable(
                f"Provider '{agent.provider}' of this agent is disabled: the server's "
                f"configuration references ${{{self._disabled[agent.provider]}}}, which is "
                "not set. An administrator must set it and restart.",
                code="provider_disabled",
            )
        if provider is None:
            raise UpstreamUnavailable(
                f"Provider '{agent.provider}' of this agent is not configured.",
            )
        return provider

    async def _prepare(
        self,
        agent: AgentSpec,
        request: RunRequest,
        state: RunState,
        caller: Caller | None,
        depth: int = 0,
    ) -> _Run:
        """Everything checked before the first upstream call; errors here are plain 4xx/5xx."""
        routes = self._routes(agent)
        provider = routes[0].provider
        limits = limits_for(self._limits, agent.params)
        server = {t.spec.name: t for t in await self._server_tools.tools_for(agent, caller)}
        if state.graph is None:
            state.graph = Graph.single(agent)
        graph = state.graph
        server.update(graph_tools(agent, graph, set(server) | {t.name for t in request.tools}))
        check_caller_tools(request, server)
        deadline = asyncio.get_running_loop().time() + limits.run_deadline_seconds
        # The whole tree shares the top-level run's deadline and model-call count.
        if graph.deadline is None:
            graph.deadline, graph.max_model_calls = deadline, limits.max_steps
        deadline = min(deadline, graph.deadline)
        state.model, state.agent_id = agent.model, agent.id
        run = _Run(
            agent,
            request,
            provider,
            server,
            limits,
            state,
            deadline,
            initial_messages(agent, request),
            request.tool_choice or ToolChoice(),
            # The caller's own key for this agent's provider only (none when it is not
            # user-provided): a key never goes to another provider.
            api_key=caller.provider_keys.get(agent.provider) if caller is not None else None,
            depth=depth,
            caller=caller,
            routes=routes,
        )
        structured.check_supported(provider, run.next_call().response_format)
        return run

    async def run(
        self,
        agent: AgentSpec,
        request: RunRequest,
        state: RunState,
        caller: Caller | None = None,
        depth: int = 0,
    ) -> AsyncGenerator[RunEvent, None]:
        """Run `agent` (and, after a handoff, the agents the conversation passes to)."""
        root = state
        while True:
            run = await self._prepare(agent, request, state, caller, depth)
            run.root = root
            async with aclosing(self._steps(run)) as steps:
                async for event in steps:
                    if isinstance(event, RunFinished):
                        event = dataclasses.replace(event, agent_id=agent.id)
                    yield event
            if run.handoff is None:
                return
            agent = run.graph.agents[run.handoff]
            request = handed_over(request, run.messages)
            state, depth = state.child(agent), depth + 1

    async def _steps(self, run: _Run) -> AsyncGenerator[RunEvent, None]:
        state = run.state
        for step_no in range(1, run.limits.max_steps + 1):
            call = run.next_call()
            if not run.graph.count_model_call():
                yield run.incomplete("max_steps")
                return
            await state.budget.admit(call)
            step = Step()
            stopped: str | None = None
            traced = None
            if tracing.tracer() is not None:
                attributes = model_call_attributes(run.provider, call)
                traced = tracing.start(f"chat {call.model}", attributes)
            try:
                async with aclosing(self._model_call(run, call, step)) as events:
                    async for event in events:
                        yield event
            except LimitReached as limit:
                stopped = limit.reason
            except BaseException as exc:
                tracing.fail(traced, exc)
                raise
            finally:
                if traced is not None:
                    end_model_call(traced, step)
            yield self._close_step(step_no, run, call, step)
            stopped = stopped or self._server_call_limit(run, step, step_no)
            if stopped is not None:
                yield run.incomplete(stopped)
                return
            if not step.server_calls:
                yield self._answer(run, call, step)
                return
            run.messages.append(assistant_message(step))
            try:
                async for event in self._run_server_calls(run, step):
                    yield event
            except LimitReached as limit:
                yield run.incomplete(limit.reason)
                return
            if step.caller_calls:
                yield finished(step, run.tree_usage)
                return
            if run.handoff is not None:
                return  # the target agent continues (run())
            # A forced choice has been honoured by the server calls: let the model answer.
            run.tool_choice = ToolChoice("auto", run.tool_choice.allowed)
        yield run.incomplete("max_steps")

    @staticmethod
    def _answer(run: _Run, call: ModelRequest, step: Step) -> RunFinished:
        """The run's end after a step without server calls (a strict schema is checked)."""
        if step.finish == "stop" and not step.caller_calls:
            structured.check_output(call.response_format, "".join(step.text))
        return finished(step, run.tree_usage)

    @staticmethod
    def _server_call_limit(run: _Run, step: Step, step_no: int) -> str | None:
        """Why the step's server calls may not run (None: they may)."""
        if not step.server_calls:
            return None
        if step_no >= run.limits.max_steps and not step.caller_calls:
            return "max_steps"  # their results could never reach the model
        limit = run.request.max_tool_calls
        if limit is not None and run.server_calls_made + len(step.server_calls) > limit:
            return "max_tool_calls"
        return None

    async def _model_call(
        self, run: _Run, call: ModelRequest, step: Step
    ) -> AsyncGenerator[RunEvent, None]:
        """Stream one model call from the first route that answers (runtime/fallbacks.py):
        a failure before the first token moves on to the agent's next fallback, priced
        and admitted anew at its model; after the first token there is no moving on."""
        candidates = run.routes
        failed: fallbacks.Route | None = None
        error: ProviderError | None = None
        for route, ticket, last in fallbacks.attempts(candidates, self._breakers):
            opened = _Opened(route, ticket)
            try:
                if not route.primary:
                    call.model, call.api_key = route.model, None  # a fallback: our own key
                    await run.state.budget.admit(call, route.provider.name)
                    source = failed.provider.name if failed else run.agent.provider
                    metrics.FALLBACKS.labels(source, route.provider.name).inc()
                async with aclosing(self._read(run, route.provider, call, step, opened)) as events:
                    async for event in events:
                        yield event
                return
            except ProviderError as exc:
                if opened.first_token:
                    raise
                if not fallbacks.moves_on(exc, call):
                    self._breakers.abandoned(ticket)
                    raise
                self._breakers.failed(ticket)
                if last:
                    raise
                failed, error = route, exc
            except BaseException:
                if not opened.first_token:
                    self._breakers.abandoned(ticket)
                raise
        # The routes left were opened by other calls meanwhile: this call's last error.
        assert error is not None
        raise error

    async def _read(
        self, run: _Run, provider_: Provider, call: ModelRequest, step: Step, opened: _Opened
    ) -> AsyncGenerator[RunEvent, None]:
        """Stream one upstream call; each wait for it is bounded by the run deadline."""
        loop = asyncio.get_running_loop()
        run.state.pending_output_chars = 0
        run.state.model, run.state.provider = call.model, provider_.name
        most_chars = (call.max_output_tokens or 0) * MAX_CHARS_PER_CAPPED_TOKEN
        server_indexes: set[int] = set()
        # Providers are async generators; the base class only promises an iterator.
        batches = cast(AsyncGenerator[list[ModelEvent], None], provider_.stream_batches(call))
        timed = not provider_.bounds_waits  # else the provider ends its call in time
        provider, started, waiting = provider_.name, loop.time(), True
        async with aclosing(batches) as upstream:
            while True:
                try:
                    if timed:
                        async with asyncio.timeout_at(run.deadline):
                            batch = await anext(upstream)
                    else:
                        batch = await anext(upstream)
                except StopAsyncIteration:
                    return
                except (TimeoutError, UpstreamTimeout) as exc:
                    if loop.time() >= run.deadline:
                        raise LimitReached("run_deadline") from exc
                    metrics.UPSTREAM_ERRORS.labels(provider, "timeout").inc()
                    if isinstance(exc, UpstreamTimeout):
                        raise
                    raise UpstreamTimeout(f"upstream {provider} timed out") from exc
                except ProviderError as exc:
                    metrics.UPSTREAM_ERRORS.labels(provider, exc.code or "upstream_error").inc()
                    mask_secret(exc, call.api_key)  # providers mask only keys they know
                    raise
                if waiting:
                    waiting = False
                    metrics.first_token(provider, loop.time() - started)
                    self._first_token(run, opened)
                visible, stop = self._route_batch(run, batch, server_indexes, step)
                if stop is None and most_chars and run.state.pending_output_chars > most_chars:
                    stop = LimitReached("max_output_tokens")
                for index, event in enumerate(visible):
                    run.state.ready_events = len(visible) - index - 1
                    yield event
                if stop is not None:
                    raise stop

    def _first_token(self, run: _Run, opened: _Opened) -> None:
        opened.first_token = True
        self._breakers.succeeded(opened.ticket)
        if not run.state.served_by:
            run.state.served_by = opened.route.label

    def _route_batch(
        self, run: _Run, batch: list[ModelEvent], server_indexes: set[int], step: Step
    ) -> tuple[list[RunEvent], LimitReached | None]:
        """Record a batch; its visible events, and the limit that stopped it, if any
        (the events before the limit are still delivered)."""
        visible: list[RunEvent] = []
        for event in batch:
            try:
                self._route(run, event, server_indexes, step)
            except LimitReached as limit:
                return visible, limit
            shown = _visible(event, server_indexes)
            if shown is not None:
                visible.append(shown)
        return visible, None

    def _route(self, run: _Run, event: ModelEvent, server_indexes: set[int], step: Step) -> None:
        """Record one model event in the step (text, calls, usage, finish)."""
        state = run.state
        if isinstance(event, TextDelta):
            step.text.append(event.text)
            state.pending_output_chars += len(event.text)
        elif isinstance(event, ReasoningDelta):
            step.reasoning.append(event.text)
            state.pending_output_chars += len(event.text)
        elif isinstance(event, ToolCallStart):
            if event.name in run.server:
                server_indexes.add(event.index)
        elif isinstance(event, ToolCallDelta):
            state.pending_output_chars += len(event.arguments_delta)
            step.add_argument_bytes(event.index, event.arguments_delta, run.limits)
        elif isinstance(event, ToolCallEnd):
            step.add_call(event, run.server if event.index in server_indexes else {}, run.limits)
        elif isinstance(event, UsageReport):
            step.usage, step.model = event.usage, event.model
        elif isinstance(event, Finish):
            step.finish = event.reason

    def _close_step(self, step_no: int, run: _Run, call: ModelRequest, step: Step) -> StepFinished:
        # Recorded at the model asked for: an upstream's own model name is not trusted
        # for pricing.
        usage = run.state.budget.settle(step.usage, run.state.pending_output_chars)
        done = StepFinished(step_no, call.model, usage, run.state.provider)
        run.state.steps.append(done)
        run.state.pending_output_chars = 0
        return done

    async def _run_server_calls(self, run: _Run, step: Step) -> AsyncGenerator[RunEvent, None]:
        calls = step.server_calls
        run.server_calls_made += len(calls)
        for tool, call in calls:
            yield ServerToolStart(call.id, tool.server, tool.spec.name, call.arguments)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(run.deadline):
                results = await self._execute(run, calls)
        except TimeoutError as exc:
            if loop.time() < run.deadline:
                raise
            raise LimitReached("run_deadline") from exc
        for (tool, call), result in zip(calls, results, strict=True):
            run.messages.append(tool_message(call, result))
            yield ServerToolResult(
                call.id,
                tool.server,
                tool.spec.name,
                call.arguments,
                result.output,
                result.is_error,
                result.agent_id,
                result.usage,
            )
        run.handoff = last_handoff(run, calls)

    async def _execute(
        self, run: _Run, calls: list[tuple[ServerTool, ToolCall]]
    ) -> list[ToolResult]:
        if run.request.parallel_tool_calls is False:
            return [await self._dispatch(run, tool, call) for tool, call in calls]
        return await all_or_none(self._dispatch(run, tool, call) for tool, call in calls)

    async def _dispatch(self, run: _Run, tool: ServerTool, call: ToolCall) -> ToolResult:
        """One server-side call: a sub-agent's run, a handoff, or an MCP tool."""
        if tool.server == SUBAGENT_SERVER:
            return await run_subagent(self, run, tool, call)
        if tool.server == HANDOFF_SERVER:
            return handoff_result(run, tool)
        return await self._call_one(tool, call.arguments, run.limits.tool_timeout_seconds)

    async def _call_one(self, tool: ServerTool, arguments: str, timeout: float) -> ToolResult:
        """One server call; a timeout or failure becomes an error result for the model."""
        if tracing.tracer() is None:
            return await self._call_one_untraced(tool, arguments, timeout)
        with tracing.span(f"execute_tool {tool.spec.name}", tool_call_attributes(tool)):
            return await self._call_one_untraced(tool, arguments, timeout)

    async def _call_one_untraced(
        self, tool: ServerTool, arguments: str, timeout: float
    ) -> ToolResult:
        try:
            # A small grace lets the tool layer report its own timeout first.
            async with asyncio.timeout(timeout + 1.0):
                return await self._server_tools.call(tool, arguments, timeout)
        except TimeoutError:
            return ToolResult(f"tool {tool.spec.name} timed out after {timeout:g}s", is_error=True)


def _visible(event: ModelEvent, server_indexes: set[int]) -> RunEvent | None:
    """The event if the caller sees it: not usage/finish, not a server tool's call."""
    if isinstance(event, TextDelta | ReasoningDelta):
        return event
    if isinstance(event, ToolCallStart | ToolCallDelta | ToolCallEnd):
        return None if event.index in server_indexes else event
    return None
