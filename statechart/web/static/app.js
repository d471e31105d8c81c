// statechart serve: the simulator page and the audit-trail replay. Plain JS, no dependency.
// Text from machines and stores is always set with textContent; only the server's Graphviz SVG
// is inserted as markup (and the page's Content-Security-Policy forbids inline scripts).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { config: null, machines: [], session: null, instance: null, steps: [], step: 0, ticket: 0 };

async function api(method, path, body) {
  const options = { method, headers: { "Accept": "application/json" } };
  if (method !== "GET") {
    options.headers["X-Statechart"] = "1";
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body || {});
  }
  const response = await fetch(path, options);
  const payload = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) {
    throw new Error(payload.error || `HTTP ${response.status}`);
  }
  return payload;
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function run(action) {
  try {
    showError("");
    await action();
  } catch (error) {
    showError(error.message);
  }
}

function parseJson(text, what) {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${what} is not valid JSON: ${error.message}`);
  }
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

function json(value) {
  return JSON.stringify(value, null, 2);
}

function setDiagram(container, svg, taken) {
  container.innerHTML = svg || '<p class="muted">This version is not loaded here, so it cannot be drawn.</p>';
  const ids = new Set(taken || []);
  for (const edge of container.querySelectorAll("g.edge[data-transition]")) {
    edge.classList.toggle("taken", ids.has(edge.dataset.transition));
  }
}

// -- simulator --------------------------------------------------------------------------------------
function fillVersions() {
  const chosen = state.machines.find((m) => m.name === $("machine").value);
  const select = clear($("version"));
  for (const version of (chosen ? chosen.versions : []).slice().reverse()) {
    select.appendChild(element("option", `v${version}`)).value = version;
  }
}

function renderSession(view) {
  state.session = view;
  $("session-controls").hidden = false;
  $("details").hidden = false;
  setDiagram($("diagram"), view.svg, view.last.transitions);
  $("active-states").textContent = `${view.machine} v${view.version} \u00b7 ` +
    (view.done ? "done in " : "active: ") + view.active_leaves.join(", ");
  $("clock").textContent = view.clock_text;
  $("depth").textContent = view.depth ? `${view.depth} step${view.depth === 1 ? "" : "s"} to go back` : "at the start";
  $("back").disabled = view.depth === 0;
  $("snapshot-link").href = `/api/sessions/${encodeURIComponent(view.id)}/snapshot`;
  $("advance-next").disabled = view.pending.length === 0;

  const events = clear($("events"));
  for (const name of view.enabled_events) {
    const button = element("button", name, "event");
    button.type = "button";
    button.dataset.event = name;
    button.addEventListener("click", () => run(() => sendEvent(name)));
    events.appendChild(button);
  }
  if (!view.enabled_events.length) events.appendChild(element("span", view.done ? "the instance is done" : "no event enabled", "muted"));

  const last = clear($("last-step"));
  const step = view.last;
  const head = element("div", step.label, "step-label " + (step.handled ? "handled" : "unhandled"));
  last.appendChild(head);
  if (!step.handled && step.kind === "send") last.appendChild(element("div", "unhandled: no transition was enabled", "muted"));
  if (step.transitions.length) last.appendChild(element("div", "transitions: " + step.transitions.join(", "), "mono"));
  for (const entry of step.logs) last.appendChild(element("div", `log ${entry.label || ""}: ${JSON.stringify(entry.value)}`, "mono"));
  for (const message of step.errors) last.appendChild(element("div", "error.execution: " + message, "mono bad"));

  $("data").textContent = json(view.data);
  const timers = clear($("timers").tBodies[0]);
  for (const timer of view.pending) {
    const row = timers.insertRow();
    row.title = `send id ${timer.id}`;
    for (const text of [timer.event, timer.due_text, timer.in_text]) row.insertCell().textContent = text;
  }
  if (!view.pending.length) timers.insertRow().insertCell().textContent = "none";
  const effects = clear($("effects"));
  for (const effect of step.effects) effects.appendChild(element("li", effect.event + (effect.data === null ? "" : " " + JSON.stringify(effect.data)), "mono"));
  if (!step.effects.length) effects.appendChild(element("li", "none in the last step", "muted"));
}

async function previewMachine() {
  // the chosen machine as it is drawn, until a session starts on it
  const name = $("machine").value, version = $("version").value;
  if (!name || !version) return;
  const ticket = ++state.ticket;
  const drawn = await api("GET", `/api/machines/${encodeURIComponent(name)}/${encodeURIComponent(version)}`);
  if (ticket !== state.ticket) return;  // a session started (or another preview) meanwhile
  state.session = null;
  $("session-controls").hidden = true;
  $("details").hidden = true;
  $("active-states").textContent = `${name} v${version} \u00b7 not started`;
  setDiagram($("diagram"), drawn.svg);
}

async function startSession() {
  state.ticket++;
  const data = parseJson($("initial-data").value, "the initial data");
  renderSession(await api("POST", "/api/sessions", { machine: $("machine").value, version: Number($("version").value), data }));
}

async function sendEvent(name) {
  if (!state.session) return;
  const data = parseJson($("payload").value, "the payload");
  renderSession(await api("POST", `/api/sessions/${state.session.id}/send`, { event: name, data }));
}

async function advance(body) {
  renderSession(await api("POST", `/api/sessions/${state.session.id}/advance`, body));
}

// -- replay -------------------------------------------------------------------------------------------
async function loadInstances() {
  const machine = $("instance-machine").value;
  const listed = await api("GET", "/api/instances" + (machine ? `?machine=${encodeURIComponent(machine)}` : ""));
  const list = clear($("instances"));
  for (const item of listed.instances) {
    const entry = element("li");
    const button = element("button", item.id, "link");
    button.type = "button";
    button.dataset.instance = item.id;
    button.addEventListener("click", () => run(() => openInstance(item.id)));
    entry.appendChild(button);
    entry.appendChild(element("span", ` ${item.machine} v${item.version} \u2014 ${item.active_leaves.join(", ")}`, "muted"));
    list.appendChild(entry);
  }
  if (!listed.instances.length) list.appendChild(element("li", "no stored instance", "muted"));
}

async function openInstance(id, toLast) {
  const trail = await api("GET", `/api/instances/${encodeURIComponent(id)}/audit`);
  state.instance = trail.instance;
  state.steps = trail.steps;
  $("replay-title").textContent = `${id}: ${trail.instance.machine} v${trail.instance.version}, revision ${trail.instance.revision}` +
    (trail.instance.done ? " (done)" : "");
  $("replay-title").classList.remove("muted");
  $("replay-controls").hidden = false;
  $("instance-send").hidden = !state.config.allow_send;
  $("read-only-note").hidden = state.config.allow_send;
  const body = clear($("audit").tBodies[0]);
  for (const row of trail.steps) {
    const tr = body.insertRow();
    tr.dataset.step = row.step;
    tr.addEventListener("click", () => run(() => showStep(row.step)));
    for (const text of [row.step + 1, row.event + (row.data === null ? "" : " " + JSON.stringify(row.data)), row.outcome, row.leaves_after.join(", ")]) {
      tr.insertCell().textContent = text;
    }
  }
  await showStep(toLast ? trail.steps.length - 1 : 0);
}

async function showStep(index) {
  if (!state.instance || !state.steps.length) return;
  index = Math.max(0, Math.min(index, state.steps.length - 1));
  const step = await api("GET", `/api/instances/${encodeURIComponent(state.instance.id)}/audit/${index}`);
  state.step = index;
  $("step-label").textContent = `step ${index + 1} of ${step.count}`;
  const box = clear($("replay-step"));
  box.appendChild(element("div", `${step.event}${step.data === null ? "" : " " + JSON.stringify(step.data)} \u2192 ${step.outcome}` +
    (step.reason ? ` (${step.reason})` : "") + (step.actor ? ` by ${step.actor}` : ""), "step-label " + (step.outcome === "applied" ? "handled" : "unhandled")));
  if (step.transitions.length) box.appendChild(element("div", "transitions: " + step.transitions.join(", "), "mono"));
  box.appendChild(element("div", "states: " + step.configuration_after.join(", "), "mono"));
  setDiagram($("replay-diagram"), step.svg, step.transitions);
  for (const tr of $("audit").tBodies[0].rows) tr.classList.toggle("current", Number(tr.dataset.step) === index);
  $("step-prev").disabled = $("step-first").disabled = index === 0;
  $("step-next").disabled = $("step-last").disabled = index === state.steps.length - 1;
}

async function sendToInstance() {
  const data = parseJson($("instance-payload").value, "the payload");
  const event = $("instance-event").value.trim();
  await api("POST", `/api/instances/${encodeURIComponent(state.instance.id)}/send`, { event, data });
  await openInstance(state.instance.id, true);
  await loadInstances();
}

async function createInstance() {
  const machine = $("create-machine").value;
  const created = await api("POST", "/api/instances", { machine, id: $("create-id").value.trim() || undefined });
  await loadInstances();
  await openInstance(created.id, true);
}

// -- wiring -------------------------------------------------------------------------------------------
function selectTab(name) {
  $("simulate").hidden = name !== "simulate";
  $("replay").hidden = name !== "replay";
  $("tab-simulate").classList.toggle("selected", name === "simulate");
  $("tab-replay").classList.toggle("selected", name === "replay");
  if (name === "replay") run(loadInstances);
}

async function init() {
  state.config = await api("GET", "/api/config");
  const listed = await api("GET", "/api/machines");
  state.machines = listed.machines;
  const select = $("machine");
  for (const machine of listed.machines) {
    select.appendChild(element("option", machine.name)).value = machine.name;
    $("instance-machine").appendChild(element("option", machine.name)).value = machine.name;
    $("create-machine").appendChild(element("option", machine.name)).value = machine.name;
  }
  fillVersions();
  if (listed.problems.length) {
    const box = $("problems");
    box.hidden = false;
    box.appendChild(element("strong", "Not loaded: "));
    for (const problem of listed.problems) box.appendChild(element("div", problem, "mono"));
  }
  await previewMachine();
  $("tab-replay").hidden = !state.config.store;
  $("create-instance").hidden = !state.config.allow_send;
  $("mode-note").textContent = state.config.store
    ? (state.config.allow_send ? "store: read-write (--allow-send)" : "store: read-only") : "";
}

document.addEventListener("DOMContentLoaded", () => {
  $("machine").addEventListener("change", () => { fillVersions(); run(previewMachine); });
  $("version").addEventListener("change", () => run(previewMachine));
  $("start").addEventListener("click", () => run(startSession));
  $("send-custom").addEventListener("click", () => run(() => sendEvent($("custom-event").value.trim())));
  $("advance").addEventListener("click", () => run(() => advance({ by: $("advance-by").value.trim() })));
  $("advance-next").addEventListener("click", () => run(() => advance({ next: true })));
  $("back").addEventListener("click", () => run(async () => renderSession(await api("POST", `/api/sessions/${state.session.id}/back`))));
  $("tab-simulate").addEventListener("click", () => selectTab("simulate"));
  $("tab-replay").addEventListener("click", () => selectTab("replay"));
  $("instance-machine").addEventListener("change", () => run(loadInstances));
  $("refresh-instances").addEventListener("click", () => run(loadInstances));
  $("step-first").addEventListener("click", () => run(() => showStep(0)));
  $("step-prev").addEventListener("click", () => run(() => showStep(state.step - 1)));
  $("step-next").addEventListener("click", () => run(() => showStep(state.step + 1)));
  $("step-last").addEventListener("click", () => run(() => showStep(state.steps.length - 1)));
  $("instance-send-button").addEventListener("click", () => run(sendToInstance));
  $("create").addEventListener("click", () => run(createInstance));
  run(init);
});
