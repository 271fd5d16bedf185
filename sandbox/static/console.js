// pokitdok-sandbox console: signs in as a client and shows its data set through the API.
// Plain browser JavaScript, no build step. Every value from the server is shown with
// textContent, never parsed as HTML.
"use strict";

const API = "/api/v4";
const REFRESH_MS = 2000;
const SLOT_ROWS = 500;

const state = {
  clientId: null, clientSecret: null, adminToken: "",
  token: null, tokenExpiresAt: 0,
  providers: new Map(), schedulers: new Map(),
  timer: null, refreshing: false, refreshCount: 0,
};

const $ = (id) => document.getElementById(id);

// -- talking to the sandbox ------------------------------------------------------

// Errors: the envelope's data.errors.message, the bare 401/403's error_description,
// or the token endpoint's RFC 6749 error_description.
function errorText(body) {
  if (!body) return null;
  const errors = body.data && body.data.errors;
  if (errors && errors.message) return errors.message;
  return body.error_description || body.message || null;
}

class ApiError extends Error {
  constructor(status, body) {
    const text = errorText(body);
    super(text ? `${status}: ${text}` : `HTTP ${status}`);
    this.status = status;
  }
}

async function fetchToken() {
  const form = new URLSearchParams({
    grant_type: "client_credentials", client_id: state.clientId, client_secret: state.clientSecret,
  });
  const answer = await fetch("/oauth2/token", {
    method: "POST", body: form, headers: { "Content-Type": "application/x-www-form-urlencoded" },
  });
  const body = await answer.json().catch(() => null);
  if (!answer.ok) throw new ApiError(answer.status, body);
  state.token = body.access_token;
  state.tokenExpiresAt = Date.now() + (body.expires_in - 30) * 1000;
}

async function api(method, path, { query, body, admin } = {}, retried = false) {
  if (!state.token || Date.now() >= state.tokenExpiresAt) await fetchToken();
  const url = new URL(API + path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== "" && value !== null && value !== undefined) url.searchParams.set(key, value);
  }
  // X-Sandbox-Console: the console's own requests stay out of the journal it shows.
  const headers = { Authorization: `Bearer ${state.token}`, "X-Sandbox-Console": "1" };
  if (admin && state.adminToken) headers["X-Sandbox-Admin-Token"] = state.adminToken;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const answer = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (answer.status === 401 && !retried) {  // expired or forgotten token: get a new one, once
    state.token = null;
    return api(method, path, { query, body, admin }, true);
  }
  const parsed = await answer.json().catch(() => null);
  if (!answer.ok) throw new ApiError(answer.status, parsed);
  return parsed.data;  // every answer is {meta, data}
}

// -- rendering ------------------------------------------------------------------

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function fillTable(id, rows) {
  const tbody = $(id).tBodies[0];
  tbody.replaceChildren(...rows);
}

function row(cells, attributes = {}) {
  const tr = document.createElement("tr");
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") tr.className = value; else tr.setAttribute(name, value);
  }
  tr.append(...cells);
  return tr;
}

function say(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

const when = (iso) => (iso || "").replace("T", " ").replace(/\.\d+/, "").replace(/(Z|\+00:00)$/, "");
const place = (loc) => (Array.isArray(loc) ? loc.join(", ") : "");

function renderCatalog(schedulers, types) {
  state.schedulers = new Map(schedulers.map((s) => [s.scheduler_uuid, s.name]));
  fillTable("schedulers", schedulers.map((s) =>
    row([cell(s.name), cell(s.description), cell(s.scheduler_uuid, "uuid")])));
  fillTable("appointment-types", types.map((t) =>
    row([cell(t.type), cell(t.description), cell(t.duration),
         cell(state.schedulers.get(t.scheduler_uuid) || t.scheduler_uuid), cell(t.appointment_type_uuid, "uuid")])));
}

function renderProviders(providers) {
  state.providers = new Map(providers.map((p) => [p.pd_provider_uuid, p.name]));
  fillTable("providers", providers.map((p) =>
    row([cell(p.name), cell(p.specialty), cell(state.schedulers.get(p.scheduler_uuid) || p.scheduler_uuid),
         cell((p.locations || []).map(place).join(" | "), "mono"), cell(p.pd_provider_uuid, "uuid")],
        { "data-provider": p.pd_provider_uuid })));
  const select = $("filter-provider");
  const chosen = select.value || select.dataset.wanted || "";
  const options = providers.map((p) => {
    const option = document.createElement("option");
    option.value = p.pd_provider_uuid;
    option.textContent = p.name;
    return option;
  });
  const all = document.createElement("option");
  all.value = "";
  all.textContent = "all providers";
  select.replaceChildren(all, ...options);
  select.value = state.providers.has(chosen) ? chosen : "";
  if (state.providers.has(chosen)) delete select.dataset.wanted;
}

function renderSlots(page) {
  $("slots-count").textContent = page.total > page.slots.length
    ? `showing the first ${page.slots.length} of ${page.total} matching slots`
    : `${page.total} matching slot${page.total === 1 ? "" : "s"}`;
  fillTable("slots", page.slots.map((s) => {
    const patient = s.patient ? `${s.patient.first_name || ""} ${s.patient.last_name || ""} (${s.patient._uuid})`.trim() : "";
    return row([cell(when(s.start_date)), cell(when(s.end_date)), cell(s.appointment_type),
                cell(state.providers.get(s.pd_provider_uuid) || s.pd_provider_uuid),
                cell(s.booked ? "booked" : "open", "status"), cell(patient), cell(s.description),
                cell(s.appointment_id, "mono"), cell(s.pd_appointment_uuid, "uuid")],
               { "data-slot": s.pd_appointment_uuid, "data-booked": String(s.booked) });
  }));
}

function renderJournal(journal) {
  fillTable("journal", journal.entries.map((e) => {
    // An injected fault's error message only repeats what `fault` says.
    const note = e.fault || ((e.violation || e.error || "") + (e.field ? ` [${e.field}]` : ""));
    const path = e.query ? `${e.path}?${e.query}` : e.path;
    const kind = e.fault ? "fault" : e.status >= 400 ? "error" : "";
    return row([cell(e.seq), cell(when(e.timestamp)), cell(e.method), cell(path, "mono"), cell(e.status),
                cell(e.duration_ms), cell(e.operation), cell(note)],
               { "data-seq": e.seq, "data-status": e.status, class: kind });
  }));
}

function renderFaults(faults) {
  const editor = $("fault-rules");
  if (!editor.value && document.activeElement !== editor && faults.rules.length) {
    const rules = faults.rules.map(({ hits, ...rule }) =>
      Object.fromEntries(Object.entries(rule).filter(([, value]) => value !== null)));
    editor.value = JSON.stringify({ seed: faults.seed, rules });
  }
  $("fault-state").textContent = faults.rules.length
    ? `In force (seed ${faults.seed}):\n` + faults.rules.map((r, i) =>
      `#${i} ${r.operation}: ${r.status ?? "no status"}, rate ${r.rate}, delay ${r.delay_ms} ms` +
      `${r.times ? `, ${r.times} times` : ""}; ${r.hits} hit${r.hits === 1 ? "" : "s"}`).join("\n")
    : "No fault rules in force.";
}

// -- loading ----------------------------------------------------------------------

function slotFilters() {
  const from = $("filter-from").value;
  const to = $("filter-to").value;
  return {
    pd_provider_uuid: $("filter-provider").value || $("filter-provider").dataset.wanted || "",
    start_date: from ? `${from}T00:00:00` : "",
    end_date: to ? `${to}T23:59:59.999999` : "",
    booked: $("filter-booked").value,
    limit: SLOT_ROWS,
  };
}

async function loadCatalog() {
  // Read on sign-in and after a reset or re-seed, never on the periodic refresh.
  const [schedulers, types, dataset] = await Promise.all([
    api("GET", "/schedule/schedulers/"), api("GET", "/schedule/appointmenttypes/"), api("GET", "/sandbox/dataset"),
  ]);
  renderCatalog(schedulers, types);
  renderSeed(dataset);
}

// The re-seed box shows what the data set was generated from (or the fixture it was loaded from).
function renderSeed(dataset) {
  for (const [id, key] of [["seed", "seed"], ["seed-providers", "seed_providers"], ["seed-slots", "seed_slots"]]) {
    if (dataset[key] !== undefined && dataset[key] !== null) $(id).value = String(dataset[key]);
  }
  $("seed").title = dataset.fixture ? `loaded from the fixture ${dataset.fixture}` : "";
}

async function refresh() {
  if (state.refreshing || !state.clientId) return;
  state.refreshing = true;
  try {
    const [providers, slots, journal, faults] = await Promise.all([
      api("GET", "/sandbox/providers"),
      api("GET", "/sandbox/slots", { query: slotFilters() }),
      api("GET", "/sandbox/journal"),
      api("GET", "/sandbox/faults"),
    ]);
    renderProviders(providers);
    renderSlots(slots);
    renderJournal(journal);
    renderFaults(faults);
    state.refreshCount += 1;
    $("refreshed").dataset.count = String(state.refreshCount);
    $("refreshed").textContent = `updated ${new Date().toLocaleTimeString()}`;
    if ($("status").className === "error" && $("status").dataset.sticky !== "1") say("");
  } catch (error) {
    say(`Refresh failed: ${error.message}`, true);
  } finally {
    state.refreshing = false;
  }
}

function setAuto(on) {
  clearInterval(state.timer);
  state.timer = on ? setInterval(refresh, REFRESH_MS) : null;
}

// -- actions ----------------------------------------------------------------------

async function signIn() {
  state.clientId = $("client-id").value.trim();
  state.clientSecret = $("client-secret").value;
  state.adminToken = $("admin-token").value.trim();
  state.token = null;
  say("Signing in…");
  try {
    await fetchToken();
    await loadCatalog();
  } catch (error) {
    state.clientId = null;
    say(`Sign-in failed: ${error.message}`, true);
    return;
  }
  $("sign-in").hidden = true;
  $("console").hidden = false;
  $("sign-out").hidden = false;
  $("who").textContent = `client ${state.clientId}`;
  document.body.dataset.state = "signed-in";
  say("");
  await refresh();
  setAuto($("auto").checked);
}

function signOut() {
  setAuto(false);
  Object.assign(state, { clientId: null, clientSecret: null, adminToken: "", token: null });
  $("console").hidden = true;
  $("sign-in").hidden = false;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  document.body.dataset.state = "signed-out";
}

async function act(label, work) {
  try {
    const result = await work();
    say(`${label}: done${result ? ` (${result})` : ""}.`);
  } catch (error) {
    $("status").dataset.sticky = "1";
    say(`${label} failed: ${error.message}`, true);
    setTimeout(() => { delete $("status").dataset.sticky; }, 5000);
  }
  await refresh();
}

// Reset and re-seed replace the whole data set: the first click asks, a second one within
// five seconds acts (no browser dialog, so the page stays scriptable).
function confirmed(id, question, action) {
  let armed = null;
  return () => {
    const button = $(id);
    if (armed) {
      clearTimeout(armed);
      armed = null;
      button.textContent = button.dataset.label;
      button.classList.remove("confirming");
      return action();
    }
    button.dataset.label = button.textContent;
    button.textContent = question;
    button.classList.add("confirming");
    armed = setTimeout(() => {
      armed = null;
      button.textContent = button.dataset.label;
      button.classList.remove("confirming");
    }, 5000);
  };
}

const summary = (s) => `${s.providers} providers, ${s.slots} slots, ${s.booked} booked`;

function wire() {
  $("sign-in").addEventListener("submit", (event) => { event.preventDefault(); signIn(); });
  $("sign-out").addEventListener("click", signOut);
  $("refresh").addEventListener("click", refresh);
  $("auto").addEventListener("change", () => setAuto($("auto").checked));
  $("filters").addEventListener("change", refresh);
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  $("reset").addEventListener("click", confirmed("reset", "Reset: click again to confirm", () => act("Reset", async () => {
    const result = summary(await api("POST", "/sandbox/reset", { admin: true }));
    await loadCatalog();
    return result;
  })));
  $("reseed").addEventListener("click", confirmed("reseed", "Re-seed: click again to confirm", () => act("Re-seed", async () => {
    const number = (id) => Number.parseInt($(id).value || "0", 10);
    const body = { seed: number("seed"), providers: number("seed-providers"), slots: number("seed-slots") };
    const result = summary(await api("POST", "/sandbox/seed", { admin: true, body }));
    await loadCatalog();
    return result;
  })));
  $("clear-journal").addEventListener("click", () => act("Clear journal",
    () => api("DELETE", "/sandbox/journal", { admin: true }).then(() => "")));
  $("apply-faults").addEventListener("click", () => act("Apply fault rules", async () => {
    let body;
    try {
      body = JSON.parse($("fault-rules").value || "{}");
    } catch (error) {
      throw new Error(`not JSON: ${error.message}`);
    }
    const result = await api("PUT", "/sandbox/faults", { admin: true, body });
    return `${result.rules.length} rule${result.rules.length === 1 ? "" : "s"}`;
  }));
  $("clear-faults").addEventListener("click", () => act("Clear fault rules",
    () => api("DELETE", "/sandbox/faults", { admin: true }).then(() => "")));
}

// Settings in the URL fragment (never sent to the server), for automation and bookmarks:
// /console#client_id=...&client_secret=...&admin_token=...&provider=...&from=YYYY-MM-DD&to=...&booked=true|false&auto=0
function readFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (![...params.keys()].length) return false;
  const set = (name, id) => { if (params.has(name)) $(id).value = params.get(name); };
  set("client_id", "client-id");
  set("client_secret", "client-secret");
  set("admin_token", "admin-token");
  set("from", "filter-from");
  set("to", "filter-to");
  set("booked", "filter-booked");
  if (params.has("provider")) $("filter-provider").dataset.wanted = params.get("provider");
  if (params.get("auto") === "0") $("auto").checked = false;
  // Keep the secret out of the address bar and the history.
  history.replaceState(null, "", location.pathname + location.search);
  return params.has("client_id") && params.has("client_secret");
}

wire();
if (readFragment()) signIn();
