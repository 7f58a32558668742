// The supervisor's live view: figures arrive as `dashboard` events on the stream whenever they change.
import { api, ApiError, el, replace, duration, londonClock, londonTime, connectLive, practices, pageData } from "./common.js";

const data = pageData("dashboard-data");
const $ = (id) => document.getElementById(id);
const stateLabels = Object.fromEntries(data.states.map((s) => [s.code, s.label]));
let names = {};
let figures = data.figures;
let agentsTimer = null;

function setValue(id, value) {
  const node = $(id);
  const text = String(value);
  if (node.textContent !== text) {
    node.textContent = text;
    node.classList.remove("flash");
    void node.offsetWidth; // restart the highlight
    node.classList.add("flash");
  }
}

function sum(values) { return Object.values(values || {}).reduce((a, b) => a + b, 0); }

function show(next) {
  figures = next;
  setValue("calls-today", next.calls_today);
  setValue("avg-handle", duration(next.avg_handle_seconds));
  setValue("bookings-total", sum(next.bookings_today_by_practice));
  setValue("open-callbacks", next.open_callbacks);
  setValue("overdue-callbacks", next.overdue_callbacks);
  $("overdue-tile").dataset.tone = next.overdue_callbacks ? "danger" : "quiet";
  for (const state of data.states) setValue(`state-${state.code}`, (next.agents_by_state || {})[state.code] || 0);
  renderPractices();
  $("updated").textContent = `Live · updated ${londonClock()}`;
}

function renderPractices() {
  const booked = figures.bookings_today_by_practice || {};
  const cancelled = figures.cancellations_today_by_practice || {};
  const moved = figures.reschedules_today_by_practice || {};
  const free = figures.free_slots_today_by_practice || {};
  const codes = [...new Set([...Object.keys(names), ...Object.keys(booked), ...Object.keys(free), ...Object.keys(cancelled)])].sort();
  if (codes.length === 0) {
    replace($("practice-table"), el("p", { class: "muted" }, "No practice figures yet today."));
    return;
  }
  const most = Math.max(1, ...codes.map((c) => free[c] || 0));
  const rows = codes.map((code) => el("tr", { dataset: { practice: code } },
    el("th", { scope: "row" }, names[code] ? names[code].name : code, el("br"), el("span", { class: "muted small mono" }, code)),
    el("td", { class: "num", dataset: { figure: "booked" } }, String(booked[code] || 0)),
    el("td", { class: "num" }, String(cancelled[code] || 0)),
    el("td", { class: "num" }, String(moved[code] || 0)),
    el("td", { class: "num", dataset: { figure: "free" } }, String(free[code] ?? "—")),
    el("td", { "aria-hidden": "true" }, el("span", { class: "bar" }))));
  const table = el("table", { class: "table", id: "practice-figures" },
    el("caption", { class: "visually-hidden" }, "Bookings and free slots today per practice"),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Practice"), el("th", { scope: "col", class: "num" }, "Booked"),
      el("th", { scope: "col", class: "num" }, "Cancelled"), el("th", { scope: "col", class: "num" }, "Moved"),
      el("th", { scope: "col", class: "num" }, "Free slots today"), el("th", { scope: "col" }, el("span", { class: "visually-hidden" }, "Share")))),
    el("tbody", {}, rows));
  replace($("practice-table"), table);
  // Bar widths through the CSSOM (allowed by the page's content security policy, unlike style attributes).
  table.querySelectorAll("tbody tr").forEach((row, i) => {
    row.querySelector(".bar").style.width = `${Math.round(((free[codes[i]] || 0) / most) * 8)}rem`;
  });
}

async function loadAgents() {
  try {
    const result = await api("GET", "/api/v1/agents", { query: { active: true, limit: 500 } });
    const order = ["on_call", "wrap_up", "available", "break", "offline"];
    const agents = result.items.filter((a) => a.role !== "admin" || a.state !== "offline")
      .sort((a, b) => order.indexOf(a.state) - order.indexOf(b.state) || a.username.localeCompare(b.username));
    replace($("agent-table"), el("table", { class: "table" },
      el("caption", { class: "visually-hidden" }, "Agents and their states"),
      el("thead", {}, el("tr", {}, ["Name", "State", "Since"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, agents.map((a) => el("tr", { dataset: { username: a.username } },
        el("td", {}, a.display_name, el("br"), el("span", { class: "muted small" }, a.username)),
        el("td", {}, el("span", { class: "state-pill", dataset: { state: a.state } }, stateLabels[a.state] || a.state)),
        el("td", { class: "mono" }, londonTime(a.state_since)))))));
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) {
      replace($("agent-table"), el("p", { class: "alert alert-error" }, `Agents could not be loaded: ${error.message}`));
    }
  }
}

function scheduleAgents() {
  if (agentsTimer !== null) return;
  agentsTimer = window.setTimeout(() => { agentsTimer = null; loadAgents(); }, 300);
}

connectLive({ dashboard: (next) => { show(next); scheduleAgents(); } });
renderPractices();
loadAgents();
practices().then((found) => { names = found; renderPractices(); });
