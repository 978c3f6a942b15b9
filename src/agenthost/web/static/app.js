// Small progressive enhancements; every page works without them.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    // Clipboard API needs a secure context; fall back to selecting the text.
    const area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1500);
}

function setupCopyButtons() {
  document.querySelectorAll("[data-copy]").forEach((button) => {
    button.addEventListener("click", () => {
      const target = document.getElementById(button.dataset.copy);
      if (target) copyText("value" in target && target.value !== undefined ? target.value : target.textContent, button);
    });
  });
}

function setupConfirmations() {
  const dialog = document.getElementById("confirm-dialog");
  if (!dialog || typeof dialog.showModal !== "function") return;
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (form.dataset.confirmed === "1") return;
      event.preventDefault();
      document.getElementById("confirm-message").textContent = form.dataset.confirm;
      dialog.returnValue = "";
      dialog.showModal();
      dialog.addEventListener("close", () => {
        if (dialog.returnValue === "ok") {
          form.dataset.confirmed = "1";
          form.requestSubmit();
        }
      }, { once: true });
    });
  });
}

function setupTabs() {
  document.querySelectorAll("[data-tabs]").forEach((root) => {
    const tabs = Array.from(root.querySelectorAll('[role="tab"]'));
    const select = (tab) => {
      tabs.forEach((t) => {
        const on = t === tab;
        t.setAttribute("aria-selected", on ? "true" : "false");
        t.tabIndex = on ? 0 : -1;
        document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
      });
      tab.focus();
    };
    tabs.forEach((tab, i) => {
      tab.addEventListener("click", () => select(tab));
      tab.addEventListener("keydown", (e) => {
        if (e.key === "ArrowRight") select(tabs[(i + 1) % tabs.length]);
        if (e.key === "ArrowLeft") select(tabs[(i - 1 + tabs.length) % tabs.length]);
      });
    });
  });
}

function setupModelChoices() {
  document.querySelectorAll("select[data-models-for]").forEach((select) => {
    const list = document.getElementById("model-choices");
    const input = document.getElementById(select.dataset.modelsFor);
    select.addEventListener("change", () => {
      const models = (select.selectedOptions[0].dataset.models || "").split(",").filter(Boolean);
      list.replaceChildren(...models.map((m) => Object.assign(document.createElement("option"), { value: m })));
      if (models.length && !models.includes(input.value)) input.value = models[0];
    });
  });
}

// A slider moves its number field and back; the number field (blank = model default)
// is what the form sends.
function setupSliders() {
  document.querySelectorAll("input[type=range][data-mirror]").forEach((range) => {
    const number = document.getElementById(range.dataset.mirror);
    if (!number) return;
    range.addEventListener("input", () => { number.value = range.value; });
    number.addEventListener("input", () => { if (number.value !== "") range.value = number.value; });
  });
}

// A select that shows a group of fields only for one of its values.
function setupDependentFields() {
  document.querySelectorAll("select[data-shows]").forEach((select) => {
    const target = document.getElementById(select.dataset.shows);
    if (!target) return;
    const update = () => { target.hidden = select.value !== select.dataset.showsWhen; };
    select.addEventListener("change", update);
    update();
  });
}

function setupReveal() {
  const dialog = document.querySelector("dialog[data-autoshow]");
  if (dialog && typeof dialog.showModal === "function") {
    dialog.close();
    dialog.showModal();
    const input = dialog.querySelector("input");
    if (input) input.select();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setupCopyButtons();
  setupConfirmations();
  setupTabs();
  setupModelChoices();
  setupSliders();
  setupDependentFields();
  setupReveal();
});
window.agenthost = { csrfToken };
