// The security dashboard: reads /api/security with the admin key kept in this tab's
// sessionStorage, and draws everything with DOM calls (no markup strings: the page's
// policy requires Trusted Types, so innerHTML would throw) and inline SVG.
"use strict";
(function () {
  const API = document.body.dataset.api;
  const KEY = "pynomaly-security-admin-key";
  const SVG = "http://www.w3.org/2000/svg";
  const LEVELS = ["critical", "high", "medium", "low"];
  const CHARTS = [
    ["requests", "Requests", false], ["blocked", "Blocked requests", true],
    ["injections", "Injection attempts", true], ["failed_logins", "Failed logins", true],
    ["alerts", "Alerts raised", true], ["errors", "Server errors (5xx)", true],
  ];
  let timer = null;

  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }
  const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString());
  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 90) return Math.round(seconds) + " s ago";
    if (seconds < 5400) return Math.round(seconds / 60) + " min ago";
    return Math.round(seconds / 3600) + " h ago";
  }

  function when(timestamp) {
    const t = Number(timestamp);
    if (!Number.isFinite(t) || t <= 0) return "";
    // Seconds, as alerts are stamped; a stamp in ms, µs or ns is scaled down.
    let ms = t * 1000;
    while (ms > 1e14) ms /= 1000;
    return " · " + new Date(ms).toLocaleString();
  }

  async function api(path, options) {
    const key = sessionStorage.getItem(KEY);
    const response = await fetch(API + path, Object.assign({
      headers: { "X-API-Key": key || "", "Accept": "application/json" },
      cache: "no-store", credentials: "omit",
    }, options || {}));
    if (response.status === 401) { signOut("The key was refused."); throw new Error("unauthorized"); }
    if (!response.ok) throw new Error(path + ": HTTP " + response.status);
    return response.json();
  }

  function tile(label, value, detail, state) {
    return el("div", { class: "tile " + (state || ""), "data-tile": label },
      el("div", { class: "label" }, label),
      el("div", { class: typeof value === "string" && /[a-z]/.test(value) ? "value text" : "value" }, value),
      el("div", { class: "detail" }, detail || ""));
  }

  function drawTiles(p) {
    const tiles = [];
    const byLevel = p.alerts_by_level || {};
    const severe = (byLevel.critical || 0) + (byLevel.high || 0);
    tiles.push(tile("Active alerts", fmt(p.active_alerts),
      LEVELS.map((l) => l + " " + (byLevel[l] || 0)).join(" · "), severe ? "bad" : (p.active_alerts ? "warn" : "ok")));
    tiles.push(p.open_incidents === null ? tile("Open incidents", "not configured", "", "off")
      : tile("Open incidents", fmt(p.open_incidents), "", p.open_incidents ? "warn" : "ok"));
    tiles.push(tile("Blocked requests", fmt(p.blocked_requests), "of " + fmt(p.requests) + " handled"));
    tiles.push(p.lockouts_active === null ? tile("Lockouts", "not configured", "", "off")
      : tile("Lockouts", fmt(p.lockouts_active), fmt(p.failed_logins) + " failed logins", p.lockouts_active ? "warn" : "ok"));
    const a = p.audit;
    if (!a) tiles.push(tile("Audit integrity", "not configured", "", "off"));
    else if (a.verified_ok === null || a.verified_ok === undefined)
      tiles.push(tile("Audit integrity", "not verified yet", (a.checkpoints || 0) + " checkpoints", "warn"));
    else tiles.push(tile("Audit integrity", a.verified_ok ? "verified" : "FAILED",
      "checked " + ago(Date.now() / 1000 - a.verified_at), a.verified_ok ? "ok" : "bad"));
    const c = p.compliance;
    tiles.push(!c ? tile("Compliance score", "not configured", "", "off")
      : tile("Compliance score", c.score === null ? "–" : c.score + "%", Object.keys(c.frameworks).join(", "),
        c.score !== null && c.score < 80 ? "warn" : "ok"));
    const v = p.vulnerabilities;
    tiles.push(!v ? tile("Vulnerable dependencies", "not configured", "", "off")
      : tile("Vulnerable dependencies", fmt(v.total),
        Object.entries(v.by_severity).map(([s, n]) => s + " " + n).join(" · "), v.total ? "bad" : "ok"));
    $("tiles").replaceChildren(...tiles);
  }

  function chart(name, title, bad, series) {
    const values = series[name] || [];
    const W = 300, H = 100, top = 8, bottom = 88;
    const max = Math.max(1, ...values);
    const total = values.reduce((s, n) => s + n, 0);
    const g = svg("g", { class: bad ? "bad" : "" });
    const box = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img",
      "aria-label": title + ": " + total + " in 24 hours" });
    box.append(svg("line", { class: "axis", x1: 0, x2: W, y1: bottom, y2: bottom }));
    box.append(svg("line", { class: "axis", x1: 0, x2: W, y1: top, y2: top }));
    const step = values.length > 1 ? W / (values.length - 1) : W;
    const y = (n) => bottom - (n / max) * (bottom - top);
    let d = "";
    values.forEach((n, i) => { d += (i ? "L" : "M") + (i * step).toFixed(1) + " " + y(n).toFixed(1); });
    if (d) {
      g.append(svg("path", { class: "area", d: d + `L${W} ${bottom}L0 ${bottom}Z` }));
      g.append(svg("path", { class: "line", d }));
    }
    box.append(g);
    const label = svg("text", { x: 2, y: 18 }); label.textContent = "max " + max + "/min";
    box.append(label);
    return el("figure", { class: "chart", "data-series": name },
      el("h3", {}, title + " · " + fmt(total)), box);
  }

  function drawCharts(series) {
    $("charts").replaceChildren(...CHARTS.map(([n, t, bad]) => chart(n, t, bad, series)));
  }

  function drawTop(target, rows, key) {
    if (!rows.length) { target.replaceChildren(el("p", { class: "empty" }, "Nothing blocked yet.")); return; }
    const max = Math.max(...rows.map((r) => r.count));
    const body = rows.map((r) => {
      const bar = svg("svg", { class: "meter", viewBox: "0 0 100 6", preserveAspectRatio: "none", "aria-hidden": "true" });
      bar.append(svg("rect", { class: "track", x: 0, y: 0, width: 100, height: 6, rx: 3 }));
      bar.append(svg("rect", { class: "fill", x: 0, y: 0, width: Math.max(2, Math.round((r.count / max) * 100)), height: 6, rx: 3 }));
      return el("tr", {}, el("td", {}, el("code", {}, r[key])),
        el("td", { class: "num" }, fmt(r.count)), el("td", { class: "bar hide-narrow" }, bar));
    });
    target.replaceChildren(el("table", {}, el("tbody", {}, ...body)));
  }

  function drawAlerts(alerts) {
    const target = $("alerts");
    if (!alerts.length) { target.replaceChildren(el("p", { class: "empty" }, "No active alerts.")); return; }
    const rows = alerts.map((a) => {
      const button = el("button", { type: "button", "data-ack": a.alert_id }, "Acknowledge");
      button.addEventListener("click", () => acknowledge(a.alert_id, button));
      return el("tr", { "data-alert": a.alert_id },
        el("td", {}, el("span", { class: "level " + a.threat_level }, a.threat_level)),
        el("td", {}, el("div", {}, a.message || a.alert_type),
          el("div", { class: "muted" }, a.alert_type + (a.source_ip ? " · " + a.source_ip : "") +
            when(a.timestamp))),
        el("td", {}, button));
    });
    target.replaceChildren(el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "Level"), el("th", {}, "Alert"), el("th", {}, ""))),
      el("tbody", {}, ...rows)));
  }

  async function acknowledge(id, button) {
    button.disabled = true;
    try {
      await api("/alerts/" + encodeURIComponent(id) + "/acknowledge", { method: "POST" });
      await load();
    } catch (e) { button.disabled = false; showError(e); }
  }

  function showError(e) { if (e.message !== "unauthorized") $("error").textContent = String(e.message || e); }

  async function load() {
    const [summary, alerts] = await Promise.all([api("/metrics/summary"), api("/alerts?limit=20")]);
    $("error").textContent = "";
    drawTiles(summary.posture);
    drawCharts(summary.series);
    drawTop($("top-routes"), summary.top_blocked_routes, "route");
    drawTop($("top-families"), summary.top_families, "family");
    drawAlerts(alerts.alerts);
    $("updated").textContent = "Updated " + new Date(summary.generated_at * 1000).toLocaleTimeString();
    if (!document.body.dataset.renderMs) {
      // Navigation start to the first render with data (bench/metrics.py reads it).
      document.body.dataset.renderMs = String(Math.round(performance.now()));
    }
    document.body.dataset.loaded = "1";
  }

  function show(signedIn) {
    $("login").hidden = signedIn; $("content").hidden = !signedIn;
    $("refresh").hidden = !signedIn; $("signout").hidden = !signedIn;
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    if (timer) { clearInterval(timer); timer = null; }
    show(false);
    $("login-error").textContent = message || "";
    $("key").focus();
  }

  async function start() {
    show(true);
    try { await load(); } catch (e) { showError(e); return; }
    if (!timer) timer = setInterval(() => load().catch(showError), 30000);
  }

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("key").value);
    $("key").value = "";
    start();
  });
  $("signout").addEventListener("click", () => signOut(""));
  $("refresh").addEventListener("click", () => load().catch(showError));
  if (sessionStorage.getItem(KEY)) start(); else show(false);
})();
