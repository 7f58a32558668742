// The agent's desk: one call from pick-up to wrap-up. Every step calls the public API; this file only keeps the
// call's working state (which patient, the red-flag answer, the hold) and shows what is allowed next.
import {
  api, ApiError, el, replace, duration, spacedNhs, londonDay, londonTime, londonWhen, birthDate, londonToday,
  CHANNELS, roleLabel, label, connectLive, practices, practiceLabel, pageData, parseUkDate, ukDate,
} from "./common.js";

const data = pageData("desk-data");
const $ = (id) => document.getElementById(id);

const desk = {
  agent: data.agent,
  call: data.open_call,          // {id, started_at}
  patient: null,                 // a registry match: {nhs_number, family, given, birth_date, practice: {...}}
  redFlag: null,                 // null (not asked), "clear" or "red"
  hold: null,                    // {hold_id, slot, deadline}
  rescheduling: null,            // the appointment being moved
  booked: null,                  // the appointment made or moved on this call
  lastOutcome: null,             // a disposition the last action suggests
  search: null,                  // the last slot search: {query, items, next_cursor, embargoed}
  slotTypes: {},
  wrappedUp: null,               // the closed call, while in wrap-up
};
let names = {};
let callTimer = null;
let holdTimer = null;

// ------------------------------------------------------------------------------------------ messages

function say(text) {
  $("desk-status").textContent = text;
}

function fail(error) {
  const box = $("desk-alert");
  box.textContent = error instanceof ApiError || error instanceof Error ? error.message : String(error);
  box.hidden = false;
}

function clearFailure() {
  $("desk-alert").hidden = true;
  $("desk-alert").textContent = "";
}

async function attempt(action) {
  clearFailure();
  try {
    return await action();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return undefined;
    fail(error);
    return undefined;
  }
}

// ------------------------------------------------------------------------------------------ what is allowed now

const onCall = () => desk.call !== null;
const mayBook = () => onCall() && desk.patient !== null && desk.redFlag === "clear";

function render() {
  const state = desk.agent.state;
  const pill = $("state-pill");
  pill.dataset.state = state;
  pill.textContent = (data.states.find((s) => s.code === state) || { label: state }).label;

  for (const button of document.querySelectorAll("[data-state-choice]")) {
    const choice = button.dataset.stateChoice;
    button.disabled = onCall() || state === "on_call";
    button.setAttribute("aria-pressed", String(state === choice));
  }
  const canStart = !onCall() && (state === "available" || state === "wrap_up");
  $("new-call").disabled = !canStart;
  $("new-call").hidden = onCall();
  $("call-hint").textContent = onCall() ? "" : canStart
    ? "Press New call when you pick up."
    : "Set yourself Available to take calls.";
  $("call-active").hidden = !onCall();
  $("wrapup-done").hidden = desk.wrappedUp === null;

  $("patient-fields").disabled = !onCall();
  $("redflag-clear").disabled = !onCall() || desk.redFlag !== null;
  $("redflag-yes").disabled = !onCall() || desk.redFlag === "red";

  // Booking: only with a patient and a clear red-flag answer.
  $("slot-fields").disabled = !mayBook();
  const blocked = $("slots-blocked");
  let why = "";
  if (!onCall()) why = "Start a call and find the patient first.";
  else if (desk.redFlag === "red") why = "Booking is blocked: the patient has a red-flag symptom and must ring 999.";
  else if (!desk.patient) why = "Find the patient first.";
  else if (desk.redFlag !== "clear") why = "Complete the red-flag check before booking.";
  blocked.textContent = why;
  blocked.hidden = why === "";
  blocked.dataset.level = desk.redFlag === "red" ? "danger" : "info";
  $("slot-results").hidden = !mayBook();
  $("embargo-note").hidden = !mayBook() || !$("embargo-note").hasChildNodes();
  if (!mayBook()) $("slot-freed-note").hidden = true;
  $("book-fields").disabled = !mayBook() || desk.hold === null;

  const banner = $("reschedule-banner");
  banner.hidden = desk.rescheduling === null || !mayBook();
  if (desk.rescheduling) {
    replace(banner, el("span", {}, `Moving the appointment on ${londonWhen(desk.rescheduling.slot.start)}: hold a new slot, `
      + "then confirm. "), el("button", { type: "button", class: "button-link", onclick: stopRescheduling },
      "Stop rescheduling"));
  }

  // After a red flag the call may only end as a 999 redirection.
  for (const option of $("disposition").options) {
    if (!option.value) continue;
    option.disabled = desk.redFlag === "red" && option.dataset.redFlag !== "yes";
  }
  renderAppointmentActions();
}

// ------------------------------------------------------------------------------------------ agent state and the call

async function setState(state) {
  await attempt(async () => {
    desk.agent = await api("PUT", `/api/v1/agents/${encodeURIComponent(desk.agent.username)}/state`, { body: { state } });
    if (desk.wrappedUp !== null) {
      desk.wrappedUp = null;
      resetCall();
    }
    render();
    say(`You are now ${state === "break" ? "on a break" : state}.`);
  });
}

function startCallTimer() {
  stopCallTimer();
  // This browser's clock when it started the call; the server's start time for a call resumed after a reload.
  const started = desk.call.localStart || new Date(desk.call.started_at).getTime();
  const tick = () => { $("call-timer").textContent = duration((Date.now() - started) / 1000); };
  tick();
  callTimer = window.setInterval(tick, 1000);
}

function stopCallTimer() {
  if (callTimer !== null) window.clearInterval(callTimer);
  callTimer = null;
}

function resetCall() {
  desk.patient = null;
  desk.redFlag = null;
  desk.rescheduling = null;
  desk.booked = null;
  desk.lastOutcome = null;
  desk.search = null;
  desk.appointments = {};
  stopHoldTimer();
  desk.hold = null;
  for (const id of ["nhs-number", "family", "birth-date", "given", "postcode", "call-notes", "book-reason"]) $(id).value = "";
  $("disposition").value = "";
  replace($("patient-matches"));
  replace($("patient-card"));
  $("patient-card").hidden = true;
  $("redflag-result").hidden = true;
  replace($("redflag-result"));
  replace($("appointments"), el("p", { class: "muted" }, "Find the patient to see their appointments."));
  replace($("slot-results"));
  replace($("embargo-note"));
  $("hold-panel").hidden = true;
  $("booked-panel").hidden = true;
  $("slot-practice").textContent = "";
}

async function newCall() {
  await attempt(async () => {
    const call = await api("POST", "/api/v1/calls", { body: {} });
    resetCall();
    desk.call = { ...call, localStart: Date.now() };
    desk.wrappedUp = null;
    desk.agent.state = "on_call";
    startCallTimer();
    render();
    prefillFromCallback();
    say("Call started. Find the patient.");
    $("nhs-number").focus();
  });
}

async function wrapUp(event) {
  event.preventDefault();
  const disposition = $("disposition").value;
  if (!disposition) {
    fail("Choose the outcome of the call.");
    $("disposition").focus();
    return;
  }
  if (desk.redFlag === "red" && !data.red_flag_dispositions.includes(disposition)) {
    fail("After a red-flag answer the outcome must be a 999 redirection.");
    return;
  }
  if (disposition === "no_slot_callback" && !desk.patient) {
    fail("Find the patient first: the callback needs their NHS number and practice.");
    return;
  }
  await attempt(async () => {
    if (desk.hold) await releaseHold({ quiet: true });
    const notes = $("call-notes").value.trim();
    if (disposition === "no_slot_callback") await raiseReleaseCallback(notes);
    const body = { disposition, notes: notes || null };
    if (desk.booked && ["booked", "rescheduled"].includes(disposition)) body.appointment_id = desk.booked.id;
    if (desk.patient) {
      body.nhs_number = desk.patient.nhs_number;
      body.practice = desk.patient.practice.ods_code;
    }
    const closed = await api("PATCH", `/api/v1/calls/${encodeURIComponent(desk.call.id)}`, { body });
    stopCallTimer();
    forgetRedFlag(desk.call.id);
    desk.call = null;
    desk.wrappedUp = closed;
    desk.agent.state = "wrap_up";
    $("wrapup-outcome").textContent = (data.dispositions.find((d) => d.code === disposition) || {}).label || disposition;
    $("handle-time").textContent = duration(closed.handle_seconds);
    render();
    say("Call wrapped up.");
    $("back-available").focus();
  });
}

async function raiseReleaseCallback(notes) {
  const embargoed = desk.search && desk.search.embargoed;
  const release = embargoed && embargoed.count > 0 ? embargoed.next_release_at : null;
  const reason = release
    ? `No slot on the call: ring the patient back when slots are released (${londonWhen(release)}).`
    : "No slot on the call: ring the patient back when slots are released.";
  await api("POST", "/api/v1/callbacks", {
    body: { ods_code: desk.patient.practice.ods_code, nhs_number: desk.patient.nhs_number,
      reason: notes ? `${reason} ${notes}` : reason, due_by: release },
  });
  say("Callback task created for the release time.");
}

async function backToAvailable() {
  await attempt(async () => {
    desk.agent = await api("PUT", `/api/v1/agents/${encodeURIComponent(desk.agent.username)}/state`, { body: { state: "available" } });
    desk.call = null;
    desk.wrappedUp = null;
    resetCall();
    render();
    say("You are available.");
    $("new-call").focus();
  });
}

// ------------------------------------------------------------------------------------------ finding the patient

async function findByNhs(event) {
  event.preventDefault();
  const raw = $("nhs-number").value.trim();
  const digits = raw.replace(/[\s-]/g, "");
  if (!/^\d{10}$/.test(digits)) {
    fail("An NHS number has 10 digits.");
    $("nhs-number").focus();
    return;
  }
  await lookUp({ nhs_number: digits }, "that NHS number");
}

async function findByName(event) {
  event.preventDefault();
  const family = $("family").value.trim();
  const born = parseUkDate($("birth-date").value);
  if (!family || !born) {
    fail(!family ? "Enter the family name." : "Enter the date of birth as DD/MM/YYYY.");
    (!family ? $("family") : $("birth-date")).focus();
    return;
  }
  await lookUp({ family, birth_date: born, postcode: $("postcode").value.trim(), given: $("given").value.trim() },
    "those details");
}

async function lookUp(query, described) {
  await attempt(async () => {
    const result = await api("GET", "/api/v1/patients", { query });
    const matches = result.items || [];
    const box = $("patient-matches");
    if (matches.length === 0) {
      replace(box, el("p", { class: "notice" }, `No registered patient matches ${described}. Check the details with the caller; `
        + "if they are not registered with a practice here, wrap up as \u201cNot registered\u201d."));
      say("No patient found.");
      return;
    }
    if (matches.length === 1 && !result.ambiguous) {
      replace(box);
      choosePatient(matches[0]);
      return;
    }
    const list = el("ul", { class: "match-list" });
    for (const match of matches) {
      list.append(el("li", {}, el("button", { type: "button", class: "match", onclick: () => { replace(box); choosePatient(match); } },
        el("strong", {}, `${match.given} ${match.family}`), ` · born ${birthDate(match.birth_date)}`,
        match.postcode ? ` · ${match.postcode}` : "", ` · ${match.practice.name}`)));
    }
    replace(box, el("p", {}, `${matches.length} patients match${result.truncated ? " (more not shown: ask for the postcode)" : ""}. `
      + "Confirm which one with the caller:"), list);
    say(`${matches.length} patients match. Choose one.`);
    list.querySelector("button").focus();
  });
}

function choosePatient(match) {
  desk.patient = match;
  desk.rescheduling = null;
  desk.search = null;
  replace($("slot-results"));
  replace($("embargo-note"));
  const practice = match.practice;
  const card = $("patient-card");
  replace(card,
    el("div", { class: "patient-head" },
      el("h3", { id: "patient-name" }, `${match.given} ${match.family}`),
      el("span", { class: "nhs mono" }, `NHS ${spacedNhs(match.nhs_number)}`)),
    el("dl", { class: "facts" },
      el("dt", {}, "Born"), el("dd", {}, birthDate(match.birth_date)),
      match.postcode ? [el("dt", {}, "Postcode"), el("dd", {}, match.postcode)] : null,
      match.phone ? [el("dt", {}, "Phone"), el("dd", {}, match.phone)] : null,
      el("dt", {}, "Practice"), el("dd", { id: "patient-practice" }, `${practice.name} (${practice.ods_code})`),
      practice.pcn ? [el("dt", {}, "PCN"), el("dd", {}, practice.pcn)] : null,
      practice.phone ? [el("dt", {}, "Practice phone"), el("dd", {}, practice.phone)] : null),
    practice.status !== "active"
      ? el("p", { class: "alert alert-error" }, `The practice is ${practice.status}: the centre cannot book for it now.`) : null,
    el("div", { class: "agent-notes" }, el("h4", {}, "Notes for agents"),
      el("p", { id: "notes-for-agents" }, practice.notes_for_agents || "None.")));
  card.hidden = false;
  $("slot-practice").textContent = `At ${practice.name} (${practice.ods_code})`;
  $("slot-from").value = ukDate(londonToday());
  $("slot-to").value = ukDate(londonToday(14));
  render();
  loadPracticeOptions(practice.ods_code).then(loadAppointments);
  say(`Patient found: ${match.given} ${match.family}, ${practice.name}. Ask the red-flag questions.`);
  if (desk.redFlag === null) $("redflag-clear").focus();
}

async function loadPracticeOptions(ods) {
  try {
    const [types, clinicians] = await Promise.all([
      api("GET", `/api/v1/practices/${encodeURIComponent(ods)}/slot-types`),
      api("GET", `/api/v1/practices/${encodeURIComponent(ods)}/clinicians`),
    ]);
    desk.slotTypes = {};
    const typeSelect = $("slot-type");
    replace(typeSelect, el("option", { value: "" }, "Any"));
    for (const type of types || []) {
      desk.slotTypes[type.code] = type;
      if (type.bookable_by_centre) typeSelect.append(el("option", { value: type.code }, type.name));
    }
    const roles = [...new Set((clinicians || []).map((c) => c.role).filter(Boolean))].sort();
    const roleSelect = $("slot-role");
    replace(roleSelect, el("option", { value: "" }, "Any"), roles.map((r) => el("option", { value: r }, roleLabel(r))));
  } catch (error) {
    // The search still works without the named options.
  }
}

// ------------------------------------------------------------------------------------------ red flags

const redFlagKey = (callId) => `redflag:${callId}`;
function forgetRedFlag(callId) { try { sessionStorage.removeItem(redFlagKey(callId)); } catch (e) { /* private mode */ } }

async function answerRedFlag(answer) {
  if (!onCall()) return;
  desk.redFlag = answer;
  try { sessionStorage.setItem(redFlagKey(desk.call.id), answer); } catch (e) { /* private mode */ }
  const result = $("redflag-result");
  result.hidden = false;
  if (answer === "red") {
    if (desk.hold) await releaseHold({ quiet: true });
    desk.rescheduling = null;
    $("hold-panel").hidden = true;
    replace($("slot-results"));
    result.dataset.level = "danger";
    replace(result,
      el("p", { class: "redflag-banner" }, "Tell the patient to hang up and ring 999 now. Do not book."),
      el("p", {}, "Then record it: wrap up the call as \u201cRed flag — told to ring 999\u201d."));
    $("disposition").value = "red_flag_999";
    render();
    say("Red flag recorded: booking is blocked.");
    result.focus();
  } else {
    result.dataset.level = "ok";
    replace(result, el("p", {}, "No red flags. You can book."));
    render();
    say("No red flags: you can book.");
    if (desk.patient) $("slot-search-button").focus();
  }
}

// ------------------------------------------------------------------------------------------ appointments

async function loadAppointments() {
  if (!desk.patient) return;
  const box = $("appointments");
  try {
    const result = await api("GET", "/api/v1/appointments", { query: { nhs_number: desk.patient.nhs_number, from: londonToday() } });
    const upcoming = (result.items || []).filter((a) => new Date(a.slot.end) > new Date());
    if (upcoming.length === 0) {
      replace(box, el("p", { class: "muted" }, "No upcoming appointments."));
      return;
    }
    const rows = upcoming.map((a) => el("tr", { dataset: { appointmentId: a.id, status: a.status } },
      el("td", {}, el("strong", {}, londonDay(a.slot.start)), el("br"), `${londonTime(a.slot.start)}–${londonTime(a.slot.end)}`),
      el("td", {}, a.slot.clinician.name || a.slot.clinician.id, el("br"), el("span", { class: "muted" }, slotTypeName(a.slot.slot_type))),
      el("td", {}, practiceLabel(names, a.practice)),
      el("td", {}, el("span", { class: `badge badge-${a.status}` }, label(a.status)), el("br"), el("span", { class: "mono small" }, a.booking_reference)),
      el("td", { class: "actions" })));
    replace(box, el("table", { class: "table" },
      el("caption", { class: "visually-hidden" }, "Upcoming appointments"),
      el("thead", {}, el("tr", {}, ["When", "With", "Practice", "Status", "Actions"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)));
    desk.appointments = Object.fromEntries(upcoming.map((a) => [a.id, a]));
    renderAppointmentActions();
  } catch (error) {
    replace(box, el("p", { class: "alert alert-error" }, `Appointments could not be loaded: ${error.message}`));
  }
}

function renderAppointmentActions() {
  for (const row of document.querySelectorAll("#appointments tr[data-appointment-id]")) {
    const appointment = (desk.appointments || {})[row.dataset.appointmentId];
    const cell = row.querySelector(".actions");
    if (!appointment || !cell || cell.querySelector("form")) continue;
    const when = londonWhen(appointment.slot.start);
    if (appointment.status !== "booked" || !onCall()) {
      replace(cell);
      continue;
    }
    replace(cell,
      el("button", { type: "button", class: "small-button", "aria-label": `Cancel the appointment on ${when}`,
        onclick: () => askCancel(appointment, cell) }, "Cancel"),
      el("button", { type: "button", class: "small-button", disabled: !mayBook() || desk.hold !== null,
        "aria-label": `Reschedule the appointment on ${when}`, onclick: () => startRescheduling(appointment) }, "Reschedule"));
  }
}

function askCancel(appointment, cell) {
  const reasonId = `cancel-reason-${appointment.id}`;
  const form = el("form", { class: "cancel-form", novalidate: true },
    el("label", { for: reasonId }, "Reason for cancelling"),
    el("input", { id: reasonId, type: "text", maxlength: "1000", autocomplete: "off" }),
    el("div", { class: "button-row" },
      el("button", { type: "submit", class: "danger small-button" }, "Confirm cancel"),
      el("button", { type: "button", class: "small-button", onclick: () => { replace(cell); renderAppointmentActions(); } }, "Keep it")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await attempt(async () => {
      await api("POST", `/api/v1/appointments/${encodeURIComponent(appointment.id)}/cancel`, {
        body: { reason: form.querySelector("input").value.trim() || null },
        headers: { "If-Match": `"${appointment.version}"` },
      });
      suggestOutcome("cancelled");
      say(`Cancelled the appointment on ${londonWhen(appointment.slot.start)}.`);
      await loadAppointments();
    });
  });
  replace(cell, form);
  form.querySelector("input").focus();
}

function startRescheduling(appointment) {
  desk.rescheduling = appointment;
  $("book-button").textContent = "Move the appointment here";
  render();
  say(`Rescheduling the appointment on ${londonWhen(appointment.slot.start)}: search and hold a new slot.`);
  $("slot-search-button").focus();
}

function stopRescheduling() {
  desk.rescheduling = null;
  $("book-button").textContent = "Book this appointment";
  render();
  say("Stopped rescheduling.");
}

function suggestOutcome(code) {
  desk.lastOutcome = code;
  if (desk.redFlag !== "red") $("disposition").value = code;
}

// ------------------------------------------------------------------------------------------ slots

function slotTypeName(code) {
  return (desk.slotTypes[code] && desk.slotTypes[code].name) || label(code);
}

function slotQuery() {
  return {
    practice: desk.patient.practice.ods_code,
    from: parseUkDate($("slot-from").value) || undefined,
    to: parseUkDate($("slot-to").value) || undefined,
    slot_type: $("slot-type").value || undefined,
    role: $("slot-role").value || undefined,
    gender: $("slot-gender").value || undefined,
    channel: $("slot-channel").value || undefined,
    include: $("slot-pcn").checked ? "pcn" : undefined,
    limit: 15,
  };
}

async function searchSlots(event) {
  if (event) event.preventDefault();
  if (!mayBook()) return;
  for (const id of ["slot-from", "slot-to"]) {
    if ($(id).value.trim() && !parseUkDate($(id).value)) {
      fail("Enter dates as DD/MM/YYYY.");
      $(id).focus();
      return;
    }
  }
  const from = parseUkDate($("slot-from").value);
  const to = parseUkDate($("slot-to").value);
  if (from && to && to < from) {
    fail("The \u201cTo\u201d date is before the \u201cFrom\u201d date.");
    $("slot-to").focus();
    return;
  }
  await attempt(async () => {
    const query = slotQuery();
    const result = await api("GET", "/api/v1/slots", { query });
    desk.search = { query, items: result.items, next_cursor: result.next_cursor, embargoed: result.embargoed };
    $("slot-freed-note").hidden = true;
    renderSlots();
    renderEmbargo(result.embargoed);
    say(result.items.length ? `${result.items.length}${result.next_cursor ? "+" : ""} slots found, earliest first.` : "No free slots match.");
  });
}

async function moreSlots() {
  if (!desk.search || !desk.search.next_cursor) return;
  await attempt(async () => {
    const result = await api("GET", "/api/v1/slots", { query: { ...desk.search.query, cursor: desk.search.next_cursor } });
    desk.search.items.push(...result.items);
    desk.search.next_cursor = result.next_cursor;
    renderSlots();
  });
}

function renderSlots() {
  const box = $("slot-results");
  const items = desk.search ? desk.search.items : [];
  if (items.length === 0) {
    replace(box, el("p", { class: "muted", id: "no-slots" }, "No free slots match this search. Widen the dates, include PCN partners, "
      + "or offer a callback when slots are released."));
    return;
  }
  // Practice names only matter when partners' slots are mixed in; otherwise the heading above says where.
  const partners = Boolean(desk.search.query.include);
  const rows = items.map((slot) => {
    const when = londonWhen(slot.start);
    const who = slot.clinician.name || slot.clinician.id;
    return el("tr", { dataset: { slotId: slot.id } },
      el("td", {}, el("strong", {}, londonDay(slot.start)), " ", `${londonTime(slot.start)}–${londonTime(slot.end)}`),
      el("td", {}, who, el("br"), el("span", { class: "muted small" },
        [roleLabel(slot.clinician.role), slot.clinician.gender ? label(slot.clinician.gender) : null].filter(Boolean).join(", "))),
      el("td", {}, slotTypeName(slot.slot_type), el("br"), el("span", { class: "muted small" }, CHANNELS[slot.channel] || label(slot.channel))),
      partners ? el("td", {}, practiceLabel(names, slot.practice),
        slot.pcn_partner ? [el("br"), el("span", { class: "badge badge-pcn" }, "PCN partner")] : null) : null,
      el("td", { class: "actions" }, desk.hold && desk.hold.slot.id === slot.id
        ? el("span", { class: "badge badge-booked" }, "Held by you")
        : el("button", { type: "button", class: "small-button primary-outline",
          "aria-label": `Hold ${when} with ${who}`, onclick: () => holdSlot(slot) }, "Hold")));
  });
  replace(box, el("table", { class: "table slot-table" },
    el("caption", { class: "visually-hidden" }, "Free slots, earliest first"),
    el("thead", {}, el("tr", {}, ["When", "Clinician", "Type", partners ? "Practice" : null, ""].filter((h) => h !== null)
      .map((h) => el("th", { scope: "col" }, h || el("span", { class: "visually-hidden" }, "Action"))))),
    el("tbody", {}, rows)),
  desk.search.next_cursor ? el("button", { type: "button", class: "button-link more", onclick: moreSlots }, "Show later slots") : null);
}

function renderEmbargo(embargoed) {
  const note = $("embargo-note");
  if (!embargoed || !embargoed.count) {
    replace(note);
    note.hidden = true;
    return;
  }
  const release = embargoed.next_release_at;
  replace(note,
    el("strong", {}, `${embargoed.count} more matching ${embargoed.count === 1 ? "slot is" : "slots are"} not released yet.`), " ",
    release ? `Next release ${londonDay(release)} at ${londonTime(release)}: ask the patient to ring back at ${londonTime(release)}, `
      + "or wrap up as \u201cNo slot — call back at release\u201d to ring them." : "");
  note.hidden = false;
}

// Another agent held or booked these: they vanish from the open search straight away.
function slotsTaken(event) {
  if (!desk.search) return;
  const gone = new Set(event.slot_ids || []);
  const mine = desk.hold ? desk.hold.slot.id : null;
  const before = desk.search.items.length;
  desk.search.items = desk.search.items.filter((slot) => !gone.has(slot.id) || slot.id === mine);
  let removed = 0;
  for (const id of gone) {
    if (id === mine) continue;
    const row = document.querySelector(`#slot-results tr[data-slot-id="${CSS.escape(id)}"]`);
    if (row) {
      if (row.contains(document.activeElement)) $("slot-search-button").focus();
      row.remove();
      removed += 1;
    }
  }
  if (removed) say(removed === 1 ? "A slot in your results was just taken by someone else." : `${removed} slots in your results were just taken by others.`);
  if (desk.search.items.length === 0 && before > 0) renderSlots();
}

// Freed slots might match the open search: offer to run it again rather than reshuffling the list unasked.
function slotsFreed(event) {
  if (!desk.search || !mayBook()) return;
  const searched = new Set([desk.search.query.practice, ...desk.search.items.map((slot) => slot.practice)]);
  if (searched.has(event.ods_code)) $("slot-freed-note").hidden = false;
}

// ------------------------------------------------------------------------------------------ hold and book

async function holdSlot(slot) {
  if (!mayBook()) return;
  await attempt(async () => {
    if (desk.hold) await releaseHold({ quiet: true });
    let hold;
    try {
      hold = await api("POST", "/api/v1/holds", { body: { slot_id: slot.id } });
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        slotsTaken({ slot_ids: [slot.id] });
        throw new Error(error.code === "embargoed" ? error.message : "Someone else has just taken that slot. Choose another.");
      }
      throw error;
    }
    desk.hold = { ...hold, slot, deadline: Date.now() + hold.expires_in_seconds * 1000 };
    $("booked-panel").hidden = true;
    showHold();
  });
}

function showHold() {
  const { slot } = desk.hold;
  replace($("hold-summary"),
    el("p", { class: "slot-when" }, `${londonDay(slot.start)} at ${londonTime(slot.start)}`,
      el("span", { class: "muted" }, ` until ${londonTime(slot.end)}`)),
    el("p", {}, `${slot.clinician.name || slot.clinician.id} (${roleLabel(slot.clinician.role)})`,
      ` · ${slotTypeName(slot.slot_type)} · ${CHANNELS[slot.channel] || label(slot.channel)}`),
    el("p", {}, practiceLabel(names, slot.practice), slot.pcn_partner ? " · a PCN partner practice: check the patient can get there" : ""),
    el("p", { class: "hint" }, desk.rescheduling
      ? `This replaces the appointment on ${londonWhen(desk.rescheduling.slot.start)}. Read it back and confirm.`
      : "Read this back to the patient and confirm before booking."));
  $("hold-expired").hidden = true;
  $("reason-field").hidden = desk.rescheduling !== null;
  $("hold-panel").hidden = false;
  if (desk.search) renderSlots();
  startHoldTimer();
  render();
  say(`Slot held for ${duration(desk.hold.expires_in_seconds)}. Confirm with the patient.`);
  $("book-button").focus();
}

function startHoldTimer() {
  stopHoldTimer();
  const tick = () => {
    if (!desk.hold) return;
    const left = (desk.hold.deadline - Date.now()) / 1000;
    $("hold-remaining").textContent = duration(left);
    $("hold-countdown").dataset.level = left <= 10 ? "danger" : left <= 30 ? "warn" : "ok";
    if (left <= 30 && left > 0 && !desk.hold.warned) {
      desk.hold.warned = true;
      say("30 seconds left on the hold.");
    }
    if (left <= 0) holdExpired();
  };
  tick();
  holdTimer = window.setInterval(tick, 250);
}

function stopHoldTimer() {
  if (holdTimer !== null) window.clearInterval(holdTimer);
  holdTimer = null;
}

function holdExpired() {
  stopHoldTimer();
  desk.hold = null;
  if (desk.search) renderSlots();
  $("hold-expired").hidden = false;
  render();
  say("The hold has expired.");
}

async function releaseHold({ quiet = false } = {}) {
  const hold = desk.hold;
  if (!hold) return;
  stopHoldTimer();
  desk.hold = null;
  $("hold-panel").hidden = true;
  if (desk.search) renderSlots();
  render();
  try {
    await api("DELETE", `/api/v1/holds/${encodeURIComponent(hold.hold_id)}`);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error; // 404: it had expired anyway
  }
  if (!quiet) say("Hold released.");
}

async function book(event) {
  event.preventDefault();
  if (!mayBook() || !desk.hold) return;
  const hold = desk.hold;
  await attempt(async () => {
    let appointment;
    if (desk.rescheduling) {
      appointment = await api("POST", `/api/v1/appointments/${encodeURIComponent(desk.rescheduling.id)}/reschedule`, {
        body: { slot_id: hold.slot.id, hold_id: hold.hold_id },
        headers: { "If-Match": `"${desk.rescheduling.version}"` },
      });
    } else {
      appointment = await api("POST", "/api/v1/appointments", {
        body: { slot_id: hold.slot.id, hold_id: hold.hold_id, nhs_number: desk.patient.nhs_number,
          reason: $("book-reason").value.trim() || null },
      });
    }
    stopHoldTimer();
    const moved = desk.rescheduling !== null;
    desk.hold = null;
    desk.rescheduling = null;
    desk.booked = appointment;
    $("book-button").textContent = "Book this appointment";
    $("hold-panel").hidden = true;
    $("booked-title").textContent = moved ? "Appointment moved" : "Booked";
    $("booking-reference").textContent = appointment.booking_reference;
    $("booked-summary").textContent = `${londonDay(appointment.slot.start)} at ${londonTime(appointment.slot.start)} with `
      + `${appointment.slot.clinician.name || appointment.slot.clinician.id}, ${practiceLabel(names, appointment.practice)}.`;
    $("booked-panel").hidden = false;
    suggestOutcome(moved ? "rescheduled" : "booked");
    if (desk.search) {
      desk.search.items = desk.search.items.filter((s) => s.id !== hold.slot.id);
      renderSlots();
    }
    render();
    say(`${moved ? "Moved" : "Booked"}. Booking reference ${appointment.booking_reference.split("").join(" ")}.`);
    $("booked-panel").focus();
    await loadAppointments();
  });
}

// ------------------------------------------------------------------------------------------ start-up

// A callback task's "Ring now" leaves the NHS number here for the next call.
function prefillFromCallback() {
  try {
    const pending = sessionStorage.getItem("callback:nhs_number");
    if (pending) {
      $("nhs-number").value = spacedNhs(pending);
      sessionStorage.removeItem("callback:nhs_number");
    }
  } catch (error) { /* private mode */ }
}

function resumeCall() {
  if (!desk.call) return;
  startCallTimer();
  let answer = null;
  try { answer = sessionStorage.getItem(redFlagKey(desk.call.id)); } catch (e) { /* private mode */ }
  if (answer === "red") {
    desk.redFlag = "red";
    $("disposition").value = "red_flag_999";
    const result = $("redflag-result");
    result.hidden = false;
    result.dataset.level = "danger";
    replace(result, el("p", { class: "redflag-banner" }, "Red flag on this call: booking is blocked. Wrap up as a 999 redirection."));
  }
  say("You have a call open. Find the patient again or wrap it up.");
}

function wire() {
  for (const button of document.querySelectorAll("[data-state-choice]")) {
    button.addEventListener("click", () => setState(button.dataset.stateChoice));
  }
  $("new-call").addEventListener("click", newCall);
  $("wrapup-form").addEventListener("submit", wrapUp);
  $("back-available").addEventListener("click", backToAvailable);
  $("find-nhs").addEventListener("submit", findByNhs);
  $("find-demographics").addEventListener("submit", findByName);
  $("redflag-clear").addEventListener("click", () => answerRedFlag("clear"));
  $("redflag-yes").addEventListener("click", () => answerRedFlag("red"));
  $("slot-search").addEventListener("submit", searchSlots);
  $("slot-refresh").addEventListener("click", () => searchSlots());
  $("book-form").addEventListener("submit", book);
  $("release-hold").addEventListener("click", () => attempt(() => releaseHold()));
  window.addEventListener("beforeunload", () => {
    // Let the slot go for others at once instead of after the hold times out.
    if (desk.hold) {
      fetch(`/api/v1/holds/${encodeURIComponent(desk.hold.hold_id)}`, { method: "DELETE", keepalive: true,
        credentials: "same-origin", headers: { "X-CSRF-Token": document.cookie.match(/(?:^|; )cc_csrf=([^;]*)/)?.[1] || "" } });
    }
  });
  // Alt+N new call, Alt+P the NHS number, Alt+S the slot search, Alt+W wrap up: optional shortcuts for people
  // who take calls all day (everything is reachable with Tab as well).
  document.addEventListener("keydown", (event) => {
    if (!event.altKey || event.ctrlKey || event.metaKey) return;
    const key = event.key.toLowerCase();
    const go = (target, enabled) => { if (enabled) { event.preventDefault(); target(); } };
    if (key === "n") go(newCall, !$("new-call").disabled && !$("new-call").hidden);
    if (key === "p") go(() => $("nhs-number").focus(), !$("patient-fields").disabled);
    if (key === "s") go(() => $("slot-from").focus(), !$("slot-fields").disabled);
    if (key === "w") go(() => $("disposition").focus(), onCall());
  });
}

wire();
resumeCall();
render();
connectLive({ slot_taken: slotsTaken, slot_freed: slotsFreed });
practices().then((found) => { names = found; });
