// The callback queue: claim a task, log each attempt to reach the patient, complete it with an outcome.
// Overdue tasks come first and stand out; the list refreshes itself when the queue changes (live stream).
import { api, ApiError, el, replace, spacedNhs, londonWhen, connectLive, practices, practiceLabel, pageData } from "./common.js";

const data = pageData("callbacks-data");
const $ = (id) => document.getElementById(id);
let names = {};
let refreshTimer = null;
let refreshWaiting = false;
let lastFigures = null;
let latestLoad = 0;
const openForms = new Set(); // task ids with a form in progress: a live refresh must not wipe what is typed

function fail(error) {
  $("callback-alert").textContent = error.message || String(error);
  $("callback-alert").hidden = false;
}

async function fetchAll(query) {
  const items = [];
  let cursor = null;
  for (let page = 0; page < 5; page += 1) {
    const result = await api("GET", "/api/v1/callbacks", { query: { ...query, limit: 200, cursor } });
    items.push(...result.items);
    cursor = result.next_cursor;
    if (!cursor) break;
  }
  return items;
}

async function load() {
  const mine = ++latestLoad; // only the newest answer is shown: an older one may arrive after it
  const view = $("callback-view").value;
  const practice = $("callback-practice").value.trim().toUpperCase() || undefined;
  try {
    let tasks;
    if (view === "completed") tasks = await fetchAll({ status: "completed", practice });
    else if (view === "overdue") tasks = await fetchAll({ overdue: true, practice });
    else {
      const [open, claimed] = await Promise.all([fetchAll({ status: "open", practice }), fetchAll({ status: "claimed", practice })]);
      tasks = [...open, ...claimed];
      if (view === "mine") tasks = tasks.filter((t) => t.claimed_by === data.me);
    }
    if (mine !== latestLoad) return;
    $("callback-alert").hidden = true;
    render(tasks, view);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) fail(error);
  }
}

function order(tasks, view) {
  if (view === "completed") return tasks.sort((a, b) => (b.completed_at || "").localeCompare(a.completed_at || ""));
  // Overdue first, then soonest due, then oldest raised.
  return tasks.sort((a, b) => (Number(b.overdue) - Number(a.overdue))
    || (a.due_by || "9999").localeCompare(b.due_by || "9999")
    || a.created_at.localeCompare(b.created_at));
}

function render(tasks, view) {
  const list = $("callback-list");
  const active = document.activeElement;
  const focusedId = active && active.closest("[data-callback-id]")?.dataset.callbackId;
  const kept = new Map();
  for (const id of openForms) {
    const node = list.querySelector(`[data-callback-id="${CSS.escape(id)}"]`);
    if (node) kept.set(id, node);
  }
  const items = order(tasks, view).map((task) => kept.get(task.id) || taskItem(task));
  replace(list, items);
  $("callback-empty").hidden = items.length > 0;
  const overdue = tasks.filter((t) => t.overdue).length;
  $("callback-summary").textContent = `${tasks.length} ${tasks.length === 1 ? "task" : "tasks"}`
    + (overdue ? `, ${overdue} overdue` : "");
  if (focusedId && kept.has(focusedId) && document.contains(active)) {
    active.focus(); // moving a kept task back into the list took the focus away from what is being typed in
  } else if (focusedId) {
    const again = list.querySelector(`[data-callback-id="${CSS.escape(focusedId)}"] button`);
    if (again) again.focus();
  }
}

function taskItem(task) {
  const mine = task.claimed_by === data.me;
  const headingId = `task-${task.id}`;
  const status = task.status === "claimed" ? `Claimed by ${mine ? "you" : task.claimed_by}` : task.status === "completed"
    ? `Completed by ${task.completed_by}` : "Open";
  return el("li", { class: "task", dataset: { callbackId: task.id, status: task.status, overdue: String(task.overdue) },
    "aria-labelledby": headingId },
    el("div", { class: "task-head" },
      el("h3", { id: headingId }, `NHS ${spacedNhs(task.nhs_number)} · ${practiceLabel(names, task.ods_code)}`),
      el("div", {},
        task.overdue ? el("span", { class: "badge badge-overdue" }, "Overdue") : null, " ",
        el("span", { class: `badge badge-${task.status}` }, status))),
    el("div", { class: "task-meta" },
      el("span", {}, "From ", el("strong", {}, data.sources[task.source] || task.source)),
      el("span", { class: task.overdue ? "due-overdue" : "" }, "Due ", el("strong", {}, task.due_by ? londonWhen(task.due_by) : "no deadline")),
      el("span", {}, "Raised ", londonWhen(task.created_at)),
      el("span", {}, `${task.attempts} ${task.attempts === 1 ? "attempt" : "attempts"}`,
        task.last_attempt_at ? `, last ${londonWhen(task.last_attempt_at)}` : "")),
    el("p", { class: "task-reason" }, task.reason),
    task.outcome ? el("p", {}, el("strong", {}, "Outcome: "), task.outcome) : null,
    actions(task, mine));
}

function actions(task, mine) {
  if (task.status === "completed") return null;
  const row = el("div", { class: "button-row" });
  const name = `NHS ${spacedNhs(task.nhs_number)}`;
  if (task.status === "open") {
    row.append(el("button", { type: "button", class: "primary", "aria-label": `Claim callback for ${name}`,
      onclick: () => act(task, { action: "claim" }, "Claimed.") }, "Claim"));
  }
  if (task.status === "open" || mine) {
    row.append(
      el("button", { type: "button", "aria-label": `Ring now: ${name}, from the desk`, onclick: () => ringNow(task) }, "Ring now"),
      el("button", { type: "button", "aria-label": `Log attempt for ${name}`,
        onclick: (event) => showForm(task, event.target, "attempt") }, "Log attempt"),
      el("button", { type: "button", "aria-label": `Complete callback for ${name}`,
        onclick: (event) => showForm(task, event.target, "complete") }, "Complete"));
  }
  if (mine) {
    row.append(el("button", { type: "button", class: "button-link", "aria-label": `Release callback for ${name}`,
      onclick: () => act(task, { action: "release" }, "Released back to the queue.") }, "Release"));
  }
  return row;
}

function showForm(task, anchor, kind) {
  const item = anchor.closest(".task");
  item.querySelector(".task-form")?.remove();
  const id = `${kind}-${task.id}`;
  const text = kind === "attempt" ? "What happened on this attempt" : "Outcome";
  const form = el("form", { class: "task-form", novalidate: true },
    el("div", { class: "field" }, el("label", { for: id }, text),
      el("input", { id, type: "text", maxlength: "2000", autocomplete: "off", required: true })),
    el("button", { type: "submit", class: "primary" }, kind === "attempt" ? "Save attempt" : "Complete task"),
    el("button", { type: "button", onclick: () => { form.remove(); formClosed(task.id); anchor.focus(); } }, "Cancel"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = form.querySelector("input").value.trim();
    if (!value) {
      fail(new Error(kind === "attempt" ? "Say what happened (e.g. no answer, left a voicemail)." : "Say how the task ended."));
      form.querySelector("input").focus();
      return;
    }
    formClosed(task.id);
    await act(task, kind === "attempt" ? { action: "attempt", note: value } : { action: "complete", outcome: value },
      kind === "attempt" ? "Attempt logged." : "Task completed.");
  });
  openForms.add(task.id);
  item.append(form);
  form.querySelector("input").focus();
}

async function act(task, body, done) {
  try {
    await api("PATCH", `/api/v1/callbacks/${encodeURIComponent(task.id)}`, { body });
    formClosed(task.id);
    $("callback-summary").textContent = done;
    await load();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) fail(error);
    await load();
  }
}

async function ringNow(task) {
  if (task.status === "open") {
    try {
      await api("PATCH", `/api/v1/callbacks/${encodeURIComponent(task.id)}`, { body: { action: "claim" } });
    } catch (error) {
      fail(error);
      return;
    }
  }
  try { sessionStorage.setItem("callback:nhs_number", task.nhs_number); } catch (error) { /* private mode */ }
  window.location.assign("/");
}

// Live refreshes wait while someone is typing into a task's form, and run once it closes.
function scheduleRefresh() {
  if (openForms.size > 0) {
    refreshWaiting = true;
    return;
  }
  if (refreshTimer !== null) return;
  refreshTimer = window.setTimeout(() => { refreshTimer = null; load(); }, 400);
}

function formClosed(taskId) {
  openForms.delete(taskId);
  if (refreshWaiting && openForms.size === 0) {
    refreshWaiting = false;
    scheduleRefresh();
  }
}

$("callback-filter").addEventListener("submit", (event) => { event.preventDefault(); load(); });
$("callback-filter").querySelector('button[type="submit"]').disabled = false;  // disabled until handled here
$("callback-view").addEventListener("change", load);
connectLive({
  // The queue's figures move whenever a task is raised, claimed or completed anywhere.
  dashboard: (figures) => {
    const key = `${figures.open_callbacks}/${figures.overdue_callbacks}`;
    if (lastFigures !== null && key !== lastFigures) scheduleRefresh();
    lastFigures = key;
  },
});
practices().then((found) => { names = found; load(); });
