// The live heat page: one book (desk or account) and timeframe, redrawn on every
// committed frame the processor pushes on /v1/stream; its firing alerts read from
// /v1/alerts and kept up to date by the stream's alert transitions. Data only ever
// reaches the document as text (textContent / text nodes), never as markup.
//
// Access: the API token is asked for once and kept for this tab only (sessionStorage:
// no cookie, nothing that outlives the tab), sent as "Authorization: Bearer" on every
// call. The stream opens with a single-use ticket bought with the token (an EventSource
// cannot send a header, and the token never goes into a URL).
"use strict";

(() => {
  // SPEC alert lines (defaults): cluster concentration, liquidation distance in sigmas,
  // regime break. Drawn on the bars and colour the numbers beyond them; what fires comes
  // from the processor's alert rules (per desk thresholds, debounced), not from these.
  const CONCENTRATION_LINES = { warning: 0.20, critical: 0.25 };
  const LIQ_SIGMA_LINES = { warning: 3, critical: 1 };
  const REGIME_BREAK_LINE = 0.3;
  const RECONNECT_MAX_MS = 5000;
  const TOKEN_KEY = "heat.apiToken";
  const BOOKS_REFRESH_MS = 30000;
  const QUADRANTS = [
    ["core", "large, convinced"],
    ["speculative", "small, convinced"],
    ["unsure", "conviction < 0.4"],
    ["hedge", "negative heat"],
  ];

  const state = {
    book: null,        // {kind: "desk"|"account", name}
    timeframe: null,
    timeframes: [],
    frame: null,
    alerts: new Map(),  // the book's firing alerts by kind and subject
    alertsMissed: null, // transitions received while /v1/alerts is being read, else null
    receivedMs: 0,     // Date.now() when the shown frame arrived
    source: null,      // the EventSource of the current book
    generation: 0,     // bumps on every book/timeframe change; late answers are dropped
    retryMs: 500,
    retryTimer: 0,
  };

  // ---- the API, with the tab's token -------------------------------------------------
  class Refused extends Error {}

  const savedToken = () => window.sessionStorage.getItem(TOKEN_KEY);

  async function api(path, options = {}) {
    // A call with the token; a 401 forgets it and asks for another.
    const headers = { Authorization: `Bearer ${savedToken() || ""}` };
    const response = await fetch(path, { cache: "no-store", ...options, headers });
    if (response.status === 401) {
      askToken("The processor refused the token (unknown, revoked, or from another "
        + "deployment): enter a valid one.");
      throw new Refused(path);
    }
    return response;
  }

  function askToken(reason) {
    // Stop everything this page does with the old token, then show the login form; a
    // submitted token reloads the page, which starts afresh with it.
    window.sessionStorage.removeItem(TOKEN_KEY);
    state.generation += 1;
    if (state.source) state.source.close();
    clearTimeout(state.retryTimer);
    setConnection("signed out");
    const form = $("login");
    $("login-reason").textContent = reason;
    form.hidden = false;
    $("token").focus();
  }

  function watchLogin() {
    $("login").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token").value.trim();
      if (!token) return;
      window.sessionStorage.setItem(TOKEN_KEY, token);
      $("token").value = "";
      window.location.reload();
    });
  }

  // ---- DOM helpers: text only -------------------------------------------------------
  const $ = (id) => document.getElementById(id);

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null) continue;
      if (key === "class") node.className = value;
      else if (key === "style") Object.assign(node.style, value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "title") node.title = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // ---- number formats ---------------------------------------------------------------
  const MINUS = "\u2212";
  const isNum = (x) => typeof x === "number" && Number.isFinite(x);
  const signed = (text, x) => (x < 0 ? MINUS + text.replace("-", "") : text);

  function pct(x, digits = 1) {
    if (!isNum(x)) return "–";
    return signed((x * 100).toFixed(digits), x) + "%";
  }

  function fixed(x, digits) {
    if (!isNum(x)) return "–";
    return signed(x.toFixed(digits), x);
  }

  function amount(x) {
    // Money and quantities: grouped, with as many decimals as the magnitude needs.
    if (!isNum(x)) return "–";
    const magnitude = Math.abs(x);
    const options = magnitude >= 1000 ? { maximumFractionDigits: 0 }
      : magnitude >= 1 ? { minimumFractionDigits: 2, maximumFractionDigits: 2 }
        : { minimumSignificantDigits: 4, maximumSignificantDigits: 4 };
    return signed(x.toLocaleString("en-US", options), x);
  }

  function sigmas(x) {
    return isNum(x) ? signed(x.toFixed(1), x) + "σ" : "–";
  }

  function age(seconds) {
    return isNum(seconds) ? seconds.toFixed(1) + " s" : "–";
  }

  function eventTime(ts) {
    // "2018-01-12T11:55:00.000Z" -> "2018-01-12 11:55:00 UTC" (event time, not wall clock)
    return typeof ts === "string" ? ts.replace("T", " ").replace(/\.\d+Z$|Z$/, "") + " UTC" : "–";
  }

  // ---- colours ----------------------------------------------------------------------
  function mix(a, b, t) {
    return a.map((value, i) => Math.round(value + (b[i] - value) * t));
  }

  function heatColour(heatShare) {
    // Warm for heat, cool for hedges; full colour at 40 % of the book's exposure.
    if (!isNum(heatShare)) return "rgb(60, 64, 72)";
    const t = Math.min(Math.abs(heatShare) / 0.4, 1);
    const base = [52, 56, 64];
    let rgb;
    if (heatShare < 0) rgb = mix(base, [40, 120, 220], t);
    else if (t < 0.5) rgb = mix(base, [214, 170, 40], t * 2);
    else rgb = mix([214, 170, 40], [222, 52, 40], (t - 0.5) * 2);
    return `rgb(${rgb.join(", ")})`;
  }

  function level(value, lines, above = true) {
    if (!isNum(value)) return "ok";
    const crosses = (line) => (above ? value >= line : value < line);
    if (crosses(lines.critical)) return "critical";
    if (crosses(lines.warning)) return "warning";
    return "ok";
  }

  // ---- books and the URL ------------------------------------------------------------
  function bookName(item, kind) {
    if (typeof item === "string") return item;
    if (item && typeof item === "object") return item[kind] ?? item.name ?? item.book ?? null;
    return null;
  }

  function parseBooks(body) {
    // {"desks": [...], "accounts": [...], "timeframes": [...]}; a book may also be an
    // object naming it ({"desk": D} / {"account": A} / {"name": N}).
    const books = [];
    for (const kind of ["desk", "account"]) {
      for (const item of body[kind + "s"] || []) {
        const name = bookName(item, kind);
        if (typeof name === "string") books.push({ kind, name });
      }
    }
    for (const item of body.books || []) {
      const kind = item.kind === "desk" || item.desk ? "desk" : "account";
      const name = bookName(item, kind);
      if (typeof name === "string") books.push({ kind, name });
    }
    const timeframes = (body.timeframes || []).filter((tf) => typeof tf === "string");
    return { books, timeframes };
  }

  const bookKey = (book) => `${book.kind}:${book.name}`;

  function readQuery() {
    const query = new URLSearchParams(window.location.search);
    let book = null;
    if (query.has("desk")) book = { kind: "desk", name: query.get("desk") };
    else if (query.has("account")) book = { kind: "account", name: query.get("account") };
    return { book, timeframe: query.get("timeframe") };
  }

  function bookQuery() {
    const query = new URLSearchParams();
    query.set(state.book.kind, state.book.name);
    query.set("timeframe", state.timeframe);
    return query.toString();
  }

  function writeQuery() {
    const url = `${window.location.pathname}?${bookQuery()}`;
    window.history.replaceState(null, "", url);
  }

  function fillChooser(books) {
    const select = $("book");
    const keep = state.book ? bookKey(state.book) : null;
    const known = new Set(books.map(bookKey));
    if (state.book && !known.has(keep)) books = [state.book, ...books];
    const groups = { desk: el("optgroup", { label: "Desks" }),
      account: el("optgroup", { label: "Accounts" }) };
    for (const book of books) {
      groups[book.kind].append(el("option", { value: bookKey(book) }, book.name));
    }
    select.replaceChildren(...Object.values(groups).filter((group) => group.children.length));
    if (keep) select.value = keep;
  }

  function fillTimeframes() {
    const holder = $("timeframes");
    const buttons = state.timeframes.map((tf) => {
      const input = el("input", { type: "radio", name: "timeframe", value: tf, id: `tf-${tf}` });
      input.checked = tf === state.timeframe;
      return el("label", { for: `tf-${tf}`, class: "segment" }, input, el("span", {}, tf));
    });
    holder.replaceChildren(...buttons);
  }

  async function loadBooks() {
    const response = await api("/v1/books");
    if (!response.ok) throw new Error(`/v1/books answered ${response.status}`);
    return parseBooks(await response.json());
  }

  // ---- frames in --------------------------------------------------------------------
  function belongs(frame) {
    if (!frame || frame.timeframe !== state.timeframe) return false;
    return state.book.kind === "desk"
      ? frame.account === null && frame.desk === state.book.name
      : frame.account === state.book.name;
  }

  function accept(frame, generation) {
    if (generation !== state.generation || !belongs(frame)) return;
    if (state.frame && frame.ts < state.frame.ts) return; // a late answer, older
    state.frame = frame;
    state.receivedMs = Date.now();
    render(frame);
  }

  const alertKey = (alert) => `${alert.kind}\u0000${alert.subject}`;

  function applyAlert(alert) {
    // A firing transition sets its kind and subject; a resolved one takes it away.
    if (alert.state === "firing") state.alerts.set(alertKey(alert), alert);
    else state.alerts.delete(alertKey(alert));
  }

  function acceptAlert(alert, generation) {
    if (generation !== state.generation || !belongs(alert)) return;
    applyAlert(alert);
    if (state.alertsMissed) state.alertsMissed.push(alert);
    renderAlerts();
  }

  async function fetchAlerts(generation) {
    // The firing alerts now; transitions arriving meanwhile are applied again on top.
    const missed = state.alertsMissed = [];
    try {
      const response = await api(`/v1/alerts?${bookQuery()}`);
      if (generation !== state.generation || missed !== state.alertsMissed) return;
      const firing = response.status === 404 ? [] : response.ok ? await response.json() : null;
      if (generation !== state.generation || missed !== state.alertsMissed) return;
      if (!Array.isArray(firing)) return;
      state.alerts = new Map();
      for (const alert of firing) {
        if (belongs(alert)) applyAlert(alert);
      }
      for (const alert of missed) applyAlert(alert);
      renderAlerts();
    } catch (error) {
      /* the stream's reconnection reads them again */
    } finally {
      if (missed === state.alertsMissed) state.alertsMissed = null;
    }
  }

  async function fetchLatest(generation) {
    try {
      const response = await api(`/v1/frames/latest?${bookQuery()}`);
      if (generation !== state.generation) return;
      if (response.status === 404) {
        if (!state.frame) notice("No frame of this book yet: waiting for the first one.");
        return;
      }
      if (!response.ok) {
        notice(`The latest frame could not be read (HTTP ${response.status}); retrying.`);
        return;
      }
      accept(await response.json(), generation);
    } catch (error) {
      if (error instanceof Refused) return;
      if (generation === state.generation) notice("The processor does not answer; retrying.");
    }
  }

  function setConnection(name) {
    const badge = $("connection");
    badge.dataset.state = name;
    badge.textContent = name;
  }

  function retryLater(generation) {
    state.retryTimer = setTimeout(() => {
      if (generation === state.generation) connect();
    }, state.retryMs);
    state.retryMs = Math.min(state.retryMs * 2, RECONNECT_MAX_MS);
  }

  async function streamTicket() {
    // A single-use ticket for one stream, bought with the token.
    const response = await api("/v1/stream/ticket", { method: "POST" });
    if (!response.ok) throw new Error(`/v1/stream/ticket answered ${response.status}`);
    return (await response.json()).ticket;
  }

  async function connect() {
    const generation = state.generation;
    if (state.source) state.source.close();
    state.source = null;
    clearTimeout(state.retryTimer);
    setConnection("connecting");
    let ticket;
    try {
      ticket = await streamTicket();
    } catch (error) {
      if (error instanceof Refused || generation !== state.generation) return;
      setConnection("reconnecting");
      followEngine();
      retryLater(generation);
      return;
    }
    if (generation !== state.generation) return;
    const query = new URLSearchParams(bookQuery());
    query.set("ticket", ticket);
    const source = new EventSource(`/v1/stream?${query}`);
    state.source = source;
    source.addEventListener("open", () => {
      state.retryMs = 500;
      setConnection("live");
      fetchLatest(generation); // frames committed while (re)connecting
      fetchAlerts(generation); // and alert transitions
    });
    source.addEventListener("frame", (event) => {
      try {
        accept(JSON.parse(event.data), generation);
      } catch (error) {
        console.error("unreadable frame", error);
      }
    });
    source.addEventListener("alert", (event) => {
      try {
        acceptAlert(JSON.parse(event.data), generation);
      } catch (error) {
        console.error("unreadable alert", error);
      }
    });
    source.addEventListener("error", () => {
      if (generation !== state.generation) return;
      // Its ticket is used up, so the browser's own retry would be refused: retry here
      // with a new one, and follow the engine when it moved to another worker.
      source.close();
      setConnection("reconnecting");
      followEngine();
      retryLater(generation);
    });
  }

  async function followEngine() {
    // This worker redirects its page to the one running the engine: load it there.
    try {
      const page = await fetch(window.location.pathname + window.location.search,
        { redirect: "manual", cache: "no-store" });
      if (page.type === "opaqueredirect") window.location.reload();
    } catch (error) { /* this worker is down: keep retrying it */ }
  }

  function choose(book, timeframe) {
    state.book = book;
    state.timeframe = timeframe;
    state.frame = null;
    state.alerts = new Map();
    state.alertsMissed = null;
    state.generation += 1;
    writeQuery();
    clearView();
    renderAlerts();
    fetchLatest(state.generation);
    fetchAlerts(state.generation);
    connect();
  }

  // ---- rendering --------------------------------------------------------------------
  function notice(text) {
    const box = $("notice");
    box.textContent = text;
    box.hidden = !text;
  }

  function clearView() {
    for (const id of ["kpis", "strip", "alerts", "quadrants"]) $(id).replaceChildren();
    for (const id of ["positions", "clusters"]) $(id).tBodies[0].replaceChildren();
    $("frame-ts").textContent = "–";
    $("frame-trigger").textContent = "";
    $("stale-banner").hidden = true;
    $("params").textContent = "";
    $("updated-ago").textContent = "–";
    document.title = `Portfolio heat · ${state.book.name} · ${state.timeframe}`;
  }

  function kpi(key, label, text, extra = {}) {
    return el("div", { class: `kpi ${extra.level || ""}`, dataset: { k: key }, title: extra.title },
      el("span", { class: "label" }, label), el("span", { class: "value" }, text));
  }

  function renderKpis(frame) {
    const liqLevel = isNum(frame.liq_distance) && frame.liq_distance < 0.1 ? "critical" : "";
    $("kpis").replaceChildren(
      kpi("equity", "equity", amount(frame.equity)),
      kpi("gross", "gross", pct(frame.gross)),
      kpi("net", "net", pct(frame.net)),
      kpi("correlated_exposure", "corr. exposure", pct(frame.correlated_exposure),
        { title: "sqrt(s' ρ s): the book's exposure counting correlations" }),
      kpi("stress_exposure", "stress E", pct(frame.stress_exposure)),
      kpi("effective_bets", "effective bets", fixed(frame.effective_bets, 2)),
      kpi("hhi", "HHI", fixed(frame.hhi, 3)),
      kpi("max_cluster_concentration", "max cluster K", pct(frame.max_cluster_concentration),
        { level: level(frame.max_cluster_concentration, CONCENTRATION_LINES) }),
      kpi("liq_distance", "liq. distance", pct(frame.liq_distance, 0), { level: liqLevel,
        title: "uniform adverse move of the whole book that takes equity to maintenance margin" }),
      kpi("var99_1d", "VaR99 1d", amount(frame.var99_1d)),
      kpi("absorption_ratio", "absorption", fixed(frame.absorption_ratio, 3)),
      kpi("regime_break", "regime break", fixed(frame.regime_break, 3),
        { level: isNum(frame.regime_break) && frame.regime_break >= REGIME_BREAK_LINE
          ? "warning" : "" }),
      kpi("max_price_age_s", "max price age", age(frame.max_price_age_s),
        { level: frame.stale ? "critical" : "" }),
      frame.warming_up ? kpi("warming_up", "statistics", "warming up", { level: "warning" })
        : "",
    );
  }

  function bar(fraction, colour) {
    const width = `${(Math.max(0, Math.min(1, fraction)) * 100).toFixed(1)}%`;
    return el("span", { class: "minibar" },
      el("span", { class: "fill", style: { width, backgroundColor: colour } }));
  }

  function renderStrip(frame) {
    // The book at a glance: a tile per position, as wide as its size, coloured by its heat.
    const rows = [...frame.positions].sort((a, b) => b.heat - a.heat);
    $("strip").replaceChildren(...rows.map((row) => el("div",
      { class: "tile", dataset: { symbol: row.symbol },
        style: { flexGrow: String(Math.max(Math.abs(row.share), 1e-6)),
          backgroundColor: heatColour(row.heat_share) },
        title: `${row.symbol}: heat ${pct(row.heat)}, share ${pct(row.share)}` },
      el("span", { class: "tsym" }, row.symbol),
      el("span", { class: "tval" }, `${pct(row.heat)} · ${pct(Math.abs(row.share), 0)}`))));
  }

  function renderPositions(frame) {
    const rows = [...frame.positions].sort((a, b) => b.heat - a.heat);
    const maxSize = Math.max(1e-12, ...rows.map((row) => Math.abs(row.share)));
    $("positions").tBodies[0].replaceChildren(...rows.map((row) => {
      const colour = heatColour(row.heat_share);
      return el("tr", { dataset: { symbol: row.symbol }, class: row.stale ? "stale" : "" },
        el("td", { class: "left sym", dataset: { k: "symbol" } }, row.symbol),
        el("td", { class: "heatcell", dataset: { k: "heat" }, style: { backgroundColor: colour } },
          pct(row.heat)),
        el("td", { dataset: { k: "heat_share" } }, pct(row.heat_share)),
        el("td", { class: "sizecell" }, bar(Math.abs(row.share) / maxSize,
          row.share < 0 ? "#8a6fd1" : "#9aa3b5")),
        el("td", { dataset: { k: "share" } }, pct(row.share)),
        el("td", { dataset: { k: "notional" } }, amount(row.notional)),
        el("td", { dataset: { k: "qty" } }, amount(row.qty)),
        el("td", { dataset: { k: "price" } }, amount(row.price)),
        el("td", { dataset: { k: "risk_contribution" } }, pct(row.risk_contribution, 2)),
        el("td", { class: "left", dataset: { k: "cluster" } }, row.cluster),
        el("td", { class: `left q-${row.quadrant}`, dataset: { k: "quadrant" } }, row.quadrant),
        el("td", { dataset: { k: "conviction" } }, fixed(row.conviction, 2)),
        el("td", { class: "left muted", dataset: { k: "strategy" } }, row.strategy ?? ""),
        el("td", { class: row.stale ? "stale-age" : "muted", dataset: { k: "price_age_s" } },
          age(row.price_age_s)),
      );
    }));
    if (!rows.length) {
      $("positions").tBodies[0].append(el("tr", {}, el("td", { colspan: "14", class: "empty" },
        "No positions.")));
    }
  }

  function concentrationBar(cluster, scale) {
    const k = cluster.concentration;
    const at = (value) => `${((value / scale) * 100).toFixed(1)}%`;
    const lvl = level(k, CONCENTRATION_LINES);
    return el("div", { class: "kbar", title: `K ${pct(k)} · stress ${pct(cluster.stress_concentration)}` },
      el("span", { class: "stress", style: { width: at(Math.max(0, cluster.stress_concentration)) } }),
      el("span", { class: `k ${lvl}`, style: { width: at(Math.max(0, k)) } }),
      el("span", { class: "line warning", style: { left: at(CONCENTRATION_LINES.warning) } }),
      el("span", { class: "line critical", style: { left: at(CONCENTRATION_LINES.critical) } }));
  }

  function renderClusters(frame) {
    const clusters = [...frame.clusters].sort((a, b) => b.concentration - a.concentration);
    const scale = Math.max(0.4, ...clusters.map((c) => c.stress_concentration * 1.05),
      ...clusters.map((c) => c.concentration * 1.05));
    $("clusters").tBodies[0].replaceChildren(...clusters.map((cluster) => el("tr",
      { dataset: { cluster: cluster.cluster } },
      el("td", { class: "left sym", dataset: { k: "cluster" } }, cluster.cluster),
      el("td", { class: "left members", dataset: { k: "members" } }, cluster.members.join(", ")),
      el("td", { class: "kbar-cell" }, concentrationBar(cluster, scale)),
      el("td", { class: `lvl-${level(cluster.concentration, CONCENTRATION_LINES)}`,
        dataset: { k: "concentration" } }, pct(cluster.concentration)),
      el("td", { dataset: { k: "stress_concentration" } }, pct(cluster.stress_concentration)),
      el("td", { dataset: { k: "gross" } }, pct(cluster.gross)),
      el("td", { dataset: { k: "net" } }, pct(cluster.net)),
      el("td", { dataset: { k: "liq_distance" } }, pct(cluster.liq_distance)),
      el("td", { class: `lvl-${level(cluster.liq_sigma, LIQ_SIGMA_LINES, false)}`,
        dataset: { k: "liq_sigma" } }, sigmas(cluster.liq_sigma)),
    )));
  }

  function renderQuadrants(frame) {
    $("quadrants").replaceChildren(...QUADRANTS.map(([name, meaning]) => {
      const members = frame.positions.filter((row) => row.quadrant === name)
        .sort((a, b) => Math.abs(b.heat) - Math.abs(a.heat));
      const heat = members.reduce((sum, row) => sum + row.heat, 0);
      const size = members.reduce((sum, row) => sum + Math.abs(row.share), 0);
      return el("div", { class: `quadrant q-${name}`, dataset: { quadrant: name } },
        el("div", { class: "qhead" }, el("b", {}, name),
          el("span", { class: "muted", dataset: { k: "count" } },
            `${members.length} position${members.length === 1 ? "" : "s"}`)),
        el("div", { class: "qmeaning" }, meaning),
        el("div", { class: "qnums" },
          el("span", {}, "heat ", el("b", { dataset: { k: "heat" } }, pct(heat))),
          el("span", {}, "size ", el("b", { dataset: { k: "size" } }, pct(size)))),
        el("div", { class: "chips" }, ...members.map((row) => el("span",
          { class: "chip", style: { borderColor: heatColour(row.heat_share) } }, row.symbol))));
    }));
  }

  // How each kind's value reads against its threshold (the alert rule's direction).
  const ALERT_READINGS = {
    cluster_concentration: { relation: "≥", value: (x) => pct(x), line: (x) => pct(x, 0) },
    liquidation_proximity: { relation: "<", value: sigmas, line: sigmas },
    stale_heat: { relation: ">", value: age, line: age },
    regime_break: { relation: "≥", value: (x) => fixed(x, 3), line: (x) => fixed(x, 2) },
  };
  const SEVERITY_ORDER = { critical: 0, warning: 1 };

  function duration(fromTs, toTs) {
    // Event time between two RFC 3339 stamps, as "3 h 05 min" / "12 min" (null if unknown).
    const ms = Date.parse(toTs) - Date.parse(fromTs);
    if (!Number.isFinite(ms) || ms < 0) return null;
    const minutes = Math.floor(ms / 60000);
    if (minutes < 60) return `${minutes} min`;
    return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
  }

  function renderAlerts() {
    // The book's firing alerts (critical first), as the processor's alert rules fired them.
    const alerts = [...state.alerts.values()].sort((a, b) =>
      (SEVERITY_ORDER[a.severity] ?? 2) - (SEVERITY_ORDER[b.severity] ?? 2)
      || a.kind.localeCompare(b.kind) || a.subject.localeCompare(b.subject));
    $("alerts-hint").textContent = `firing · ${state.timeframe}`;
    $("alerts").replaceChildren(...alerts.map((alert) => {
      const reading = ALERT_READINGS[alert.kind]
        || { relation: "vs", value: (x) => fixed(x, 3), line: (x) => fixed(x, 3) };
      const lasted = state.frame ? duration(alert.ts, state.frame.ts) : null;
      // The day only when it is not the shown frame's (the full stamp is the tooltip).
      const sameDay = state.frame && alert.ts.slice(0, 10) === state.frame.ts.slice(0, 10);
      const since = eventTime(alert.ts);
      return el("li", { class: `alert ${alert.severity}`, title: alert.message,
        dataset: { kind: alert.kind, subject: alert.subject, severity: alert.severity } },
      el("span", { class: "sev" }, alert.severity),
      el("span", { class: "head" }, el("span", { class: "what" }, alert.kind.replace(/_/g, " ")),
        " ", el("span", { class: "subject" }, alert.subject)),
      el("span", { class: "msg" }, el("span", { dataset: { k: "value" } }, reading.value(alert.value)),
        ` ${reading.relation} `, el("span", { dataset: { k: "threshold" } }, reading.line(alert.threshold)),
        el("span", { class: "muted" }, " when it fired")),
      el("span", { class: "since" }, "since ",
        el("time", { datetime: alert.ts, title: since }, sameDay ? since.slice(11) : since),
        lasted ? ` · ${lasted}` : ""));
    }));
    if (!alerts.length) $("alerts").append(el("li", { class: "alert none" }, "none firing"));
  }

  function renderStale(frame) {
    const banner = $("stale-banner");
    const limit = frame.params && isNum(frame.params.stale_after_s) ? frame.params.stale_after_s : 2;
    const stale = frame.positions.filter((row) => row.stale || row.price_age_s > limit);
    const isStale = frame.stale || stale.length > 0;
    banner.hidden = !isStale;
    if (!isStale) return;
    const worst = stale.sort((a, b) => b.price_age_s - a.price_age_s)
      .map((row) => `${row.symbol} ${age(row.price_age_s)}`).join(", ");
    banner.textContent = `Stale prices (older than ${limit} s): ${worst || age(frame.max_price_age_s)}`
      + " · heat uses the last known prices";
  }

  function render(frame) {
    notice("");
    const ts = $("frame-ts");
    ts.textContent = eventTime(frame.ts);
    ts.setAttribute("datetime", frame.ts);
    $("frame-trigger").textContent = `${frame.trigger}${frame.warming_up ? " · warming up" : ""}`;
    renderKpis(frame);
    renderStrip(frame);
    renderPositions(frame);
    renderClusters(frame);
    renderQuadrants(frame);
    renderAlerts();
    renderStale(frame);
    $("params").textContent = `params ${frame.params_hash} · ${frame.timeframe} horizon · `
      + `ρ cut ${frame.params?.rho_min ?? "–"} · stress κ ${frame.params?.stress_kappa ?? "–"}`;
    tick();
  }

  function tick() {
    const shown = $("updated-ago");
    if (!state.frame) return;
    const seconds = Math.max(0, Math.floor((Date.now() - state.receivedMs) / 1000));
    shown.textContent = `${seconds} s ago`;
    shown.className = seconds >= 30 ? "late" : "";
  }

  // ---- start ------------------------------------------------------------------------
  async function start() {
    if (!savedToken()) {
      askToken("Enter an API token with the read scope: the page shows the books of "
        + "its desks. It is kept for this tab only.");
      return;
    }
    const wanted = readQuery();
    let books = [];
    try {
      const loaded = await loadBooks();
      books = loaded.books;
      state.timeframes = loaded.timeframes;
    } catch (error) {
      if (error instanceof Refused) return; // the login form is up
      notice("The processor does not list its books yet; retrying.");
    }
    if (!state.timeframes.length) state.timeframes = wanted.timeframe ? [wanted.timeframe] : [];
    const book = wanted.book || books[0] || null;
    const timeframe = state.timeframes.includes(wanted.timeframe) ? wanted.timeframe
      : state.timeframes[0];
    if (!book || !timeframe) {
      setTimeout(start, 2000);
      return;
    }
    state.book = book;
    state.timeframe = timeframe;
    fillChooser(books);
    fillTimeframes();
    $("book").addEventListener("change", (event) => {
      const [kind, ...rest] = event.target.value.split(":");
      choose({ kind, name: rest.join(":") }, state.timeframe);
    });
    $("timeframes").addEventListener("change", (event) => {
      if (event.target.name === "timeframe") choose(state.book, event.target.value);
    });
    $("chooser").addEventListener("submit", (event) => event.preventDefault());
    setInterval(tick, 1000);
    const refreshBooks = async () => {
      try {
        fillChooser((await loadBooks()).books);
      } catch (error) { /* the next refresh retries */ }
    };
    setInterval(refreshBooks, BOOKS_REFRESH_MS);
    $("book").addEventListener("focus", refreshBooks); // books appear as the engine runs
    choose(book, timeframe);
  }

  document.addEventListener("DOMContentLoaded", () => {
    watchLogin();
    start();
  });
})();
