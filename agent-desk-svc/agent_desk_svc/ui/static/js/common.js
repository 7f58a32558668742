// Shared by every page: calling the API through the gateway (cookie session + CSRF header), building DOM
// safely (text only, never HTML strings), the live event stream, and the formats the pages show.

const LONDON = "Europe/London";

export function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `Request failed (${status})`);
    this.status = status;
    this.code = (problem && problem.code) || "";
    this.problem = problem || {};
  }
}

// method, path, {body, query, headers}: JSON in and out. Changes carry X-CSRF-Token (the gateway checks it
// against the cc_csrf cookie). A 401 means the session ended: back to the sign-in page.
export async function api(method, path, options = {}) {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(options.query || {})) {
    if (value === undefined || value === null || value === "" || value === false) continue;
    for (const item of Array.isArray(value) ? value : [value]) url.searchParams.append(key, String(item));
  }
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = cookie("cc_csrf");
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    throw new ApiError(0, { detail: "The centre's servers cannot be reached. Check the connection and try again." });
  }
  if (response.status === 401) {
    window.location.assign("/login?expired=1");
    throw new ApiError(401, { detail: "Your session has ended." });
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (error) { data = null; }
  if (!response.ok) throw new ApiError(response.status, data || { detail: response.statusText });
  return data;
}

// el("p", {class: "x", dataset: {id: 1}, onclick: fn}, "text", child, ...)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function replace(container, ...children) {
  container.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

// Formats, matching agent_desk_svc/ui/presenters.py.
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  const whole = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const secs = whole % 60;
  const mm = hours ? String(minutes).padStart(2, "0") : String(minutes);
  return `${hours ? hours + ":" : ""}${mm}:${String(secs).padStart(2, "0")}`;
}

export function spacedNhs(value) {
  const digits = String(value || "").replace(/[\s-]/g, "");
  return /^\d{10}$/.test(digits) ? `${digits.slice(0, 3)} ${digits.slice(3, 6)} ${digits.slice(6)}` : String(value || "");
}

const dayFormat = new Intl.DateTimeFormat("en-GB", { timeZone: LONDON, weekday: "short", day: "numeric", month: "short" });
const dayYearFormat = new Intl.DateTimeFormat("en-GB", { timeZone: LONDON, day: "numeric", month: "short", year: "numeric" });
const timeFormat = new Intl.DateTimeFormat("en-GB", { timeZone: LONDON, hour: "2-digit", minute: "2-digit" });
const clockFormat = new Intl.DateTimeFormat("en-GB", { timeZone: LONDON, hour: "2-digit", minute: "2-digit", second: "2-digit" });
const isoDayFormat = new Intl.DateTimeFormat("en-CA", { timeZone: LONDON, year: "numeric", month: "2-digit", day: "2-digit" });

export const londonDay = (iso) => dayFormat.format(new Date(iso));
export const londonTime = (iso) => timeFormat.format(new Date(iso));
export const londonClock = (date) => clockFormat.format(date || new Date());
export const londonWhen = (iso) => `${londonDay(iso)}, ${londonTime(iso)}`;
export const birthDate = (isoDate) => dayYearFormat.format(new Date(`${isoDate}T12:00:00Z`));
// Today's date in London as YYYY-MM-DD (the API's dates are London dates).
export function londonToday(offsetDays = 0) {
  return isoDayFormat.format(new Date(Date.now() + offsetDays * 86400000));
}

// Dates typed the British way: 23/11/2026, 23-11-2026, 23112026; or ISO 2026-11-23. Answers YYYY-MM-DD or null.
export function parseUkDate(text) {
  const value = String(text || "").trim();
  let parts = /^(\d{1,2})[/.\- ](\d{1,2})[/.\- ](\d{4})$/.exec(value);
  if (!parts) parts = /^(\d{2})(\d{2})(\d{4})$/.exec(value);
  let iso = null;
  if (parts) iso = `${parts[3]}-${parts[2].padStart(2, "0")}-${parts[1].padStart(2, "0")}`;
  else if (/^\d{4}-\d{2}-\d{2}$/.test(value)) iso = value;
  if (!iso) return null;
  const check = new Date(`${iso}T12:00:00Z`);
  return !Number.isNaN(check.getTime()) && check.toISOString().slice(0, 10) === iso ? iso : null;
}

export function ukDate(iso) {
  const [year, month, day] = String(iso).split("-");
  return `${day}/${month}/${year}`;
}

export function label(code) {
  return String(code || "").replace(/_/g, " ").replace(/^\w/, (c) => c.toUpperCase());
}

export const CHANNELS = { in_person: "In person", telephone: "Telephone", video: "Video", home_visit: "Home visit" };
export const ROLES = { gp: "GP", anp: "Advanced nurse practitioner", nurse: "Nurse", hca: "Healthcare assistant",
  pharmacist: "Pharmacist", physio: "Physiotherapist", paramedic: "Paramedic" };
export const roleLabel = (role) => ROLES[role] || label(role);

// The live stream (server-sent events). EventSource reconnects by itself after a dropped connection; after a
// refused one (e.g. the gateway restarting) it gives up, so start a new one after a pause.
export function connectLive(handlers) {
  const status = document.getElementById("live-status");
  const setStatus = (state, text) => {
    if (!status) return;
    status.hidden = false;
    status.dataset.live = state;
    status.querySelector(".live-text").textContent = text;
  };
  let source = null;
  let retry = null;
  setStatus("off", "Connecting…");
  const open = () => {
    source = new EventSource("/api/v1/stream");
    source.addEventListener("open", () => setStatus("on", "Live"));
    source.addEventListener("error", () => {
      setStatus("off", "Reconnecting…");
      if (source.readyState === EventSource.CLOSED && retry === null) {
        retry = window.setTimeout(() => { retry = null; open(); }, 3000);
      }
    });
    for (const [name, handler] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => {
        let data = null;
        try { data = JSON.parse(event.data); } catch (error) { return; }
        handler(data);
      });
    }
  };
  open();
  window.addEventListener("pagehide", () => source && source.close());
  return () => source && source.close();
}

// Practice names by ODS code, fetched once per page.
let practiceNames = null;
export async function practices() {
  if (practiceNames) return practiceNames;
  practiceNames = {};
  try {
    let cursor = null;
    for (let page = 0; page < 10; page += 1) {
      const result = await api("GET", "/api/v1/practices", { query: { limit: 500, cursor } });
      for (const practice of result.items || []) practiceNames[practice.ods_code] = practice;
      cursor = result.next_cursor;
      if (!cursor) break;
    }
  } catch (error) {
    // Names are a nicety: codes still identify practices.
  }
  return practiceNames;
}

export function practiceLabel(names, ods) {
  const practice = names && names[ods];
  return practice ? `${practice.name} (${ods})` : ods;
}

export function pageData(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : {};
}
