// Chat with an agent through POST /api/agents/v1/responses (stream: true, store: true).
// The browser session authenticates the calls: same-origin cookie + X-CSRF-Token header.
// A conversation is a chain of stored responses (previous_response_id); this browser keeps
// the list of chains (ids and titles only, in localStorage) and reopens one by reading its
// responses back from the API. Deleting a conversation deletes its stored responses.
"use strict";

(function () {
  const API = "/api/agents/v1/responses";
  const KEPT = 50; // conversations listed
  const root = document.querySelector("[data-playground]");
  if (!root) return;
  const log = document.getElementById("pg-log");
  const form = document.getElementById("pg-form");
  const input = document.getElementById("pg-input");
  const agentSelect = document.getElementById("pg-agent");
  const status = document.getElementById("pg-status");
  const send = document.getElementById("pg-send");
  const stop = document.getElementById("pg-stop");
  const list = document.getElementById("pg-conversations");
  const storeKey = "agenthost.playground." + root.dataset.user;
  const render = window.agenthostMarkdown.render;
  const agentNames = Object.fromEntries(Array.from(agentSelect.options).map((o) => [o.value, o.dataset.name || o.textContent]));

  let conversations = load();
  let current = null; // {id, agent, title, responses: [ids], updated}
  let running = null; // the AbortController of the call in flight

  function load() {
    try {
      const parsed = JSON.parse(localStorage.getItem(storeKey) || "[]");
      return Array.isArray(parsed) ? parsed.filter((c) => c && Array.isArray(c.responses)) : [];
    } catch (_) {
      return [];
    }
  }

  function save() {
    conversations.sort((a, b) => b.updated - a.updated);
    conversations = conversations.slice(0, KEPT);
    try { localStorage.setItem(storeKey, JSON.stringify(conversations)); } catch (_) { /* full or blocked */ }
    showList();
  }

  function headers(json) {
    const found = { "X-CSRF-Token": window.agenthost.csrfToken() };
    if (json) found["Content-Type"] = "application/json";
    return found;
  }

  // --- the transcript ------------------------------------------------------------------

  function entry(kind) {
    const item = document.createElement("li");
    item.className = "msg " + kind;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = { user: "You", assistant: "Agent", tool: "Tool", agent: "Agent call", error: "Error", note: "Note" }[kind];
    const body = document.createElement("div");
    body.className = "body";
    item.append(who, body);
    log.append(item);
    item.scrollIntoView({ block: "end" });
    return { item, body };
  }

  function userEntry(text) {
    entry("user").body.textContent = text;
  }

  function plainEntry(kind, text) {
    entry(kind).body.textContent = text;
  }

  // An answer: Markdown, re-rendered at most once a frame while it streams, plus a copy
  // button for its source text.
  function answerEntry() {
    const { item, body } = entry("assistant");
    const answer = { text: "", pending: false };
    const copy = document.createElement("button");
    copy.type = "button";
    copy.className = "copy secondary small";
    copy.textContent = "Copy";
    copy.setAttribute("aria-label", "Copy this answer");
    copy.addEventListener("click", () => copyText(answer.text, copy));
    item.append(copy);
    answer.set = (text) => {
      answer.text = text;
      if (answer.pending) return;
      answer.pending = true;
      requestAnimationFrame(() => {
        answer.pending = false;
        body.replaceChildren(render(answer.text));
      });
    };
    answer.add = (delta) => answer.set(answer.text + delta);
    answer.by = (agentId) => {
      item.querySelector(".who").textContent = "Agent · " + (agentNames[agentId] || agentId);
    };
    return answer;
  }

  function copyText(text, button) {
    const done = () => {
      const label = button.textContent;
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = label; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => {});
    } else {
      const area = document.createElement("textarea");
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
      done();
    }
  }

  // A server-side tool call (an `agenthost:tool_call` item): collapsed, with its
  // arguments and result inside.
  function toolEntry(item) {
    const { body } = entry("tool");
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    const failed = item.status && item.status !== "completed";
    summary.textContent = (item.name || item.type) + (failed ? " (" + item.status + ")" : "");
    details.append(summary);
    for (const [label, value] of [["Arguments", item.arguments], ["Result", item.output]]) {
      if (value === undefined || value === null || value === "") continue;
      const heading = document.createElement("p");
      heading.className = "help";
      heading.textContent = label;
      const pre = document.createElement("pre");
      pre.textContent = typeof value === "string" ? value : JSON.stringify(value, null, 2);
      details.append(heading, pre);
    }
    body.append(details);
  }

  // A sub-agent's run or a handoff (an `agenthost:agent_call` item), collapsed like a tool.
  function agentCallEntry(item) {
    const { body } = entry("agent");
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    const name = agentNames[item.agent] || item.agent || item.name;
    const failed = item.status && item.status !== "completed";
    summary.textContent = (item.kind === "handoff" ? "Handed over to " : "Asked ") + name + (failed ? " (" + item.status + ")" : "");
    details.append(summary);
    for (const [label, value] of [["Input", item.input], ["Answer", item.output]]) {
      if (value === undefined || value === null || value === "") continue;
      const heading = document.createElement("p");
      heading.className = "help";
      heading.textContent = label;
      const pre = document.createElement("pre");
      pre.textContent = String(value);
      details.append(heading, pre);
    }
    body.append(details);
  }

  function answeredBy(response, answer, requested) {
    const by = response && response.agenthost && response.agenthost.answered_by;
    if (answer && by && by !== requested) answer.by(by);
  }

  function outputItem(item, answer) {
    if (item.type === "agenthost:tool_call") {
      toolEntry(item);
      return answer;
    }
    if (item.type === "agenthost:agent_call") {
      agentCallEntry(item);
      return answer;
    }
    if (item.type === "message") {
      const text = (item.content || []).filter((c) => c.type === "output_text").map((c) => c.text).join("");
      const shown = answerEntry();
      shown.set(text);
      return shown; // the last answer, which answered_by labels
    }
    return answer;
  }

  function describeError(payload, statusCode) {
    const err = (payload && (payload.error || (payload.response && payload.response.error))) || {};
    return (err.message || "Request failed") + (statusCode ? " (HTTP " + statusCode + ")" : "");
  }

  // --- a call ----------------------------------------------------------------------------

  function handle(event, turn) {
    const type = event.type || "";
    if (type === "response.created" && event.response) {
      remember(event.response.id);
    } else if (type === "response.output_text.delta") {
      if (!turn.answer) turn.answer = answerEntry();
      turn.answer.add(event.delta);
    } else if (type === "response.output_item.added" && event.item && event.item.type === "agenthost:tool_call") {
      status.textContent = "Running tool " + (event.item.name || "") + "…";
    } else if (type === "response.output_item.done" && event.item && event.item.type === "agenthost:tool_call") {
      toolEntry(event.item);
      turn.answer = null;
    } else if (type === "response.output_item.done" && event.item && event.item.type === "agenthost:agent_call") {
      agentCallEntry(event.item);
      turn.answer = null;
    } else if (type === "error" || type === "response.failed") {
      if (!turn.failed) plainEntry("error", describeError(event));
      turn.failed = true;
    } else if ((type === "response.completed" || type === "response.incomplete") && event.response) {
      answeredBy(event.response, turn.answer, turn.agent);
      const usage = event.response.usage;
      const reason = event.response.incomplete_details && event.response.incomplete_details.reason;
      status.textContent = (reason ? "Stopped early (" + reason + ")" : "Done") +
        (usage ? " · " + usage.input_tokens + " input / " + usage.output_tokens + " output tokens" : "");
    }
  }

  async function readStream(response, turn) {
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
        if (data && data !== "[DONE]") handle(JSON.parse(data), turn);
      }
    }
  }

  function remember(responseId) {
    if (!current || current.responses.includes(responseId)) return;
    current.responses.push(responseId);
    current.updated = Date.now();
    if (!conversations.includes(current)) conversations.push(current);
    save();
  }

  function setRunning(controller) {
    running = controller;
    send.hidden = Boolean(controller);
    stop.hidden = !controller;
    agentSelect.disabled = Boolean(controller);
  }

  async function submit(event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || running) return;
    if (!current || current.agent !== agentSelect.value) {
      current = { id: String(Date.now()) + Math.random().toString(16).slice(2, 8), agent: agentSelect.value, title: text.slice(0, 80), responses: [], updated: Date.now() };
    }
    userEntry(text);
    input.value = "";
    status.textContent = "Waiting for the agent…";
    const body = { model: current.agent, input: text, stream: true, store: true, include: ["agenthost:tool_calls"] };
    const previous = current.responses[current.responses.length - 1];
    if (previous) body.previous_response_id = previous;
    const controller = new AbortController();
    setRunning(controller);
    const turn = { answer: null, failed: false, agent: current.agent };
    try {
      const response = await fetch(API, {
        method: "POST",
        credentials: "same-origin",
        headers: headers(true),
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      if (!response.ok) {
        let payload = null;
        try { payload = await response.json(); } catch (_) { /* not JSON */ }
        plainEntry("error", describeError(payload, response.status));
        status.textContent = "";
        return;
      }
      status.textContent = "Streaming…";
      await readStream(response, turn);
    } catch (err) {
      if (controller.signal.aborted) {
        status.textContent = "Stopped: the agent's call was cancelled.";
      } else {
        plainEntry("error", String(err));
      }
    } finally {
      setRunning(null);
      input.focus();
    }
  }

  // --- conversations ---------------------------------------------------------------------

  function showList() {
    list.replaceChildren();
    for (const conversation of conversations) {
      const item = document.createElement("li");
      if (current && conversation.id === current.id) item.setAttribute("aria-current", "true");
      const open = document.createElement("button");
      open.type = "button";
      open.className = "link";
      open.textContent = conversation.title || "(untitled)";
      open.title = new Date(conversation.updated).toLocaleString();
      open.addEventListener("click", () => reopen(conversation));
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "secondary small";
      remove.textContent = "Delete";
      remove.setAttribute("aria-label", "Delete conversation: " + (conversation.title || "untitled"));
      remove.addEventListener("click", () => forget(conversation));
      item.append(open, remove);
      list.append(item);
    }
    list.closest("section").hidden = conversations.length === 0;
  }

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: headers(false) });
    if (response.status === 404) return null;
    if (!response.ok) throw new Error("HTTP " + response.status);
    return response.json();
  }

  async function reopen(conversation) {
    if (running) return;
    current = conversation;
    log.replaceChildren();
    const options = Array.from(agentSelect.options).map((o) => o.value);
    if (options.includes(conversation.agent)) agentSelect.value = conversation.agent;
    showList();
    status.textContent = "Opening…";
    let missing = 0;
    for (const responseId of conversation.responses) {
      const [inputs, response] = await Promise.all([
        getJSON(API + "/" + encodeURIComponent(responseId) + "/input_items?order=asc&limit=100"),
        getJSON(API + "/" + encodeURIComponent(responseId)),
      ]);
      if (!inputs || !response) { missing += 1; continue; }
      for (const item of inputs.data) {
        if (item.type === "message" && item.role === "user") {
          const content = typeof item.content === "string" ? item.content
            : (item.content || []).filter((c) => c.type === "input_text").map((c) => c.text).join("");
          userEntry(content);
        }
      }
      let answer = null;
      for (const item of response.output || []) answer = outputItem(item, answer);
      answeredBy(response, answer, conversation.agent);
      if (response.status === "incomplete" || response.status === "cancelled") plainEntry("note", "This answer was stopped before it ended.");
    }
    if (missing) plainEntry("note", missing + " earlier turn(s) are no longer stored.");
    status.textContent = "";
    input.focus();
  }

  async function forget(conversation) {
    if (running && current === conversation) return;
    status.textContent = "Deleting…";
    await Promise.all(conversation.responses.map((id) => fetch(API + "/" + encodeURIComponent(id), {
      method: "DELETE", credentials: "same-origin", headers: headers(false),
    }).catch(() => null)));
    conversations = conversations.filter((c) => c !== conversation);
    if (current === conversation) newConversation();
    save();
    status.textContent = "Conversation deleted.";
  }

  function newConversation() {
    current = null;
    log.replaceChildren();
    status.textContent = "";
    showList();
  }

  form.addEventListener("submit", submit);
  input.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit(); });
  agentSelect.addEventListener("change", () => { if (current && current.agent !== agentSelect.value) newConversation(); });
  document.getElementById("pg-reset").addEventListener("click", newConversation);
  stop.addEventListener("click", () => { if (running) running.abort(); });
  showList();
})();
