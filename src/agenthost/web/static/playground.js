// Chat with an agent through POST /api/agents/v1/responses (stream: true).
// The browser session authenticates the call: same-origin cookie + X-CSRF-Token header.
"use strict";

(function () {
  const API = "/api/agents/v1/responses";
  const log = document.getElementById("pg-log");
  const form = document.getElementById("pg-form");
  const input = document.getElementById("pg-input");
  const agentSelect = document.getElementById("pg-agent");
  const status = document.getElementById("pg-status");
  const send = document.getElementById("pg-send");
  let previousId = null;

  function entry(kind, text) {
    const item = document.createElement("li");
    item.className = "msg " + kind;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = { user: "You", assistant: "Agent", tool: "Tool", error: "Error" }[kind];
    const body = document.createElement("div");
    body.className = "body";
    body.textContent = text || "";
    item.append(who, body);
    log.append(item);
    item.scrollIntoView({ block: "end" });
    return body;
  }

  function describeError(payload, statusCode) {
    const err = (payload && (payload.error || (payload.response && payload.response.error))) || {};
    return (err.message || "Request failed") + (statusCode ? " (HTTP " + statusCode + ")" : "");
  }

  function toolLine(item) {
    const name = item.name || item.server_label || item.type;
    const args = item.arguments ? " " + item.arguments : "";
    const out = item.output ? " → " + String(item.output).slice(0, 500) : "";
    return name + args + out;
  }

  function handle(event, state) {
    const type = event.type || "";
    if (type === "response.created" && event.response) previousId = event.response.id;
    if (type === "response.output_text.delta") {
      if (!state.text) state.text = entry("assistant", "");
      state.text.textContent += event.delta;
    } else if (type === "response.output_item.done" && event.item && event.item.type !== "message" && event.item.type !== "reasoning") {
      entry("tool", toolLine(event.item));
      state.text = null;
    } else if (type === "response.output_item.added" && event.item && event.item.type !== "message" && event.item.type !== "reasoning") {
      status.textContent = "Running tool " + (event.item.name || event.item.type) + "…";
    } else if (type === "error" || type === "response.failed") {
      entry("error", describeError(event));
    } else if (type === "response.completed" && event.response) {
      previousId = event.response.id;
      const usage = event.response.usage;
      if (usage) status.textContent = "Done · " + usage.input_tokens + " input / " + usage.output_tokens + " output tokens";
    }
  }

  async function readStream(response, state) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = frame.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
        if (data && data !== "[DONE]") handle(JSON.parse(data), state);
      }
    }
  }

  async function submit(event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    entry("user", text);
    input.value = "";
    send.disabled = true;
    status.textContent = "Waiting for the agent…";
    const body = { model: agentSelect.value, input: text, stream: true, store: true };
    if (previousId) body.previous_response_id = previousId;
    try {
      const response = await fetch(API, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": window.agenthost.csrfToken() },
        body: JSON.stringify(body),
      });
      if (!response.ok) {
        let payload = null;
        try { payload = await response.json(); } catch (_) { /* not JSON */ }
        entry("error", describeError(payload, response.status));
        status.textContent = "";
        return;
      }
      status.textContent = "Streaming…";
      await readStream(response, { text: null });
    } catch (err) {
      entry("error", String(err));
    } finally {
      send.disabled = false;
      input.focus();
    }
  }

  form.addEventListener("submit", submit);
  input.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit(); });
  agentSelect.addEventListener("change", () => { previousId = null; });
  document.getElementById("pg-reset").addEventListener("click", () => { previousId = null; log.replaceChildren(); status.textContent = ""; });
})();
