// Managing staff accounts: add, disable or enable, reset a password. The API decides who may change whom
// (supervisors manage agents; admins manage everyone); this page only offers what the API will accept.
import { api, ApiError, el, replace, londonWhen, pageData } from "./common.js";

const data = pageData("agents-data");
const $ = (id) => document.getElementById(id);
const stateLabels = Object.fromEntries(data.states.map((s) => [s.code, s.label]));
const mayManage = (agent) => agent.username !== data.me && (data.my_role === "admin" || agent.role === "agent");

function say(text) {
  $("agents-status").textContent = text;
  $("agents-alert").hidden = true;
}

function fail(error) {
  const problem = error.problem || {};
  const details = (problem.errors || []).map((e) => `${(e.loc || []).slice(-1)[0]}: ${e.msg}`).join("; ");
  $("agents-alert").textContent = details ? `${error.message} (${details})` : error.message;
  $("agents-alert").hidden = false;
}

async function load() {
  try {
    const agents = [];
    let cursor = null;
    for (let page = 0; page < 10; page += 1) {
      const result = await api("GET", "/api/v1/agents", { query: { limit: 500, cursor } });
      agents.push(...result.items);
      cursor = result.next_cursor;
      if (!cursor) break;
    }
    render(agents);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) fail(error);
  }
}

function render(agents) {
  const rows = agents.map((agent) => el("tr", { dataset: { username: agent.username, active: String(agent.active) } },
    el("td", {}, el("strong", {}, agent.display_name), el("br"), el("span", { class: "muted small mono" }, agent.username)),
    el("td", {}, agent.role),
    el("td", {}, agent.active ? el("span", { class: "state-pill", dataset: { state: agent.state } }, stateLabels[agent.state] || agent.state)
      : el("span", { class: "badge" }, "Disabled")),
    el("td", { class: "small" }, agent.last_sign_in_at ? londonWhen(agent.last_sign_in_at) : "never"),
    el("td", { class: "actions" }, mayManage(agent) ? actions(agent) : null)));
  replace($("agent-list"), el("table", { class: "table", id: "agents-table" },
    el("caption", { class: "visually-hidden" }, "Staff accounts"),
    el("thead", {}, el("tr", {}, ["Name", "Role", "State", "Last sign-in", el("span", { class: "visually-hidden" }, "Actions")]
      .map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows)));
}

function actions(agent) {
  const cell = el("div", { class: "button-row" });
  cell.append(
    el("button", { type: "button", class: "small-button", "aria-label": `Reset password of ${agent.username}`,
      onclick: (event) => showReset(agent, event.target) }, "Reset password"),
    agent.active
      ? el("button", { type: "button", class: "small-button danger-outline", "aria-label": `Disable ${agent.username}`,
        onclick: () => patch(agent, { active: false }, `${agent.username} is disabled and can no longer sign in.`) }, "Disable")
      : el("button", { type: "button", class: "small-button", "aria-label": `Enable ${agent.username}`,
        onclick: () => patch(agent, { active: true }, `${agent.username} is enabled.`) }, "Enable"));
  return cell;
}

function showReset(agent, anchor) {
  const cell = anchor.closest("td");
  const id = `reset-${agent.username}`;
  const form = el("form", { class: "reset-form", novalidate: true },
    el("div", { class: "field" }, el("label", { for: id }, `New password for ${agent.username}`),
      el("input", { id, type: "password", autocomplete: "new-password", minlength: "10", maxlength: "256", required: true })),
    el("button", { type: "submit", class: "small-button primary" }, "Save"),
    el("button", { type: "button", class: "small-button", onclick: () => load() }, "Cancel"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const password = form.querySelector("input").value;
    if (password.length < 10) {
      fail(new Error("A password needs at least 10 characters."));
      form.querySelector("input").focus();
      return;
    }
    await patch(agent, { password }, `The password of ${agent.username} is reset.`);
  });
  replace(cell, form);
  form.querySelector("input").focus();
}

async function patch(agent, body, done) {
  try {
    await api("PATCH", `/api/v1/agents/${encodeURIComponent(agent.username)}`, { body });
    say(done);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) fail(error);
  }
  await load();
}

$("create-agent").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = Object.fromEntries(new FormData(form).entries());
  body.username = body.username.trim();
  body.display_name = body.display_name.trim();
  if (!body.username || !body.display_name || body.password.length < 10) {
    fail(new Error("Fill in the username, the display name and a password of at least 10 characters."));
    return;
  }
  try {
    const created = await api("POST", "/api/v1/agents", { body });
    form.reset();
    say(`Added ${created.username} (${created.role}).`);
    await load();
    $("new-username").focus();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) fail(error);
  }
});
// The page comes with the submit button disabled: a native submission would put the password in the URL.
$("create-agent").querySelector('button[type="submit"]').disabled = false;

load();
