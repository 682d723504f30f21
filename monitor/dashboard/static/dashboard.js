// driftline dashboard: reads /api/* and draws each model's windows with Plotly.js.
// The worst window (lowest health; drift first) is outlined in red on every window plot
// and its most drifted feature is named; clicking a window opens its drill-down report.
"use strict";

const TOKEN_KEY = "driftline.token";
const WINDOWS = 500;           // newest windows drawn per model
const HEATMAP_FEATURES = 25;   // most drifted features shown in the heatmap
const RED = "#c62828", AMBER = "#f9a825", GREEN = "#2e7d32", GREY = "#757575";
const UNHEALTHY = 50, WATCH = 80;  // health bands: red below 50, amber below 80
const METRICS = ["accuracy", "rmse", "mae", "f1_macro", "roc_auc"];
// Drag to zoom, double-click to reset; no mode bar over the plots.
const PLOT_CONFIG = {displaylogo: false, responsive: true, displayModeBar: false};

class NeedToken extends Error {}

async function api(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = token ? {Authorization: `Bearer ${token}`} : {};
  const response = await fetch(path, {headers});
  if (response.status === 401) throw new NeedToken("the API refused the token");
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status} ${await response.text()}`);
  return response.json();
}

const enc = encodeURIComponent;
// Plotly draws its labels from a small HTML subset: names from the data are escaped.
const esc = (text) => String(text).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
const reportUrl = (model, key) => `/models/${enc(model)}/windows/${enc(key)}/report`;
// Plotly reads "YYYY-MM-DD HH:MM:SS" as given; the API's times are UTC ("...Z").
const plotTime = (iso) => (iso == null ? null : iso.replace("T", " ").replace("Z", ""));
const fmt = (value, digits = 3) =>
  value == null ? "–" : Math.abs(value) < 1e-3 && value !== 0 ? value.toExponential(1)
    : Number(value.toFixed(digits)).toString();
// A window is drawn at its middle; its outline spans window_start to window_end.
const middle = (w) => plotTime(new Date((Date.parse(w.window_start) + Date.parse(w.window_end)) / 2)
  .toISOString());
const short = (iso) => (iso || "").replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, "");

// A feature's drift as a multiple of its decision line: >= 1 exactly when it drifted.
// Distance methods: score / threshold. Test methods: log p / log cutoff, capped by the
// effect over its floor (the window line's effect and min_effect) when there is one.
function strength(f) {
  if (f == null || f.score == null) return null;
  if (f.p_value != null && f.threshold > 0 && f.threshold < 1) {
    let r = Math.log(Math.max(f.p_value, 1e-300)) / Math.log(f.threshold);
    if (f.min_effect > 0 && f.effect != null) r = Math.min(r, f.effect / f.min_effect);
    return Math.max(r, 0);
  }
  return f.threshold > 0 ? f.score / f.threshold : null;
}

function topFeature(w) {
  let best = null;
  for (const [name, f] of Object.entries(w.features || {})) {
    const s = strength(f);
    if (f.drift && (best === null || s > best.strength)) best = {name, strength: s, ...f};
  }
  return best;
}

const isRed = (w) => w.drift_detected === true || (w.health_score != null && w.health_score < UNHEALTHY);
const healthColour = (w) => isRed(w) ? RED
  : (w.health_score != null && w.health_score < WATCH) || (w.alerts || []).length ? AMBER : GREEN;

// Lowest health first; among equals, drift detected, then the larger drift share, then
// the strongest drifted feature.
function worstWindow(windows) {
  const rank = (w) => [w.health_score ?? Infinity, w.drift_detected ? 0 : 1,
                       -(w.drift_share ?? 0), -(topFeature(w)?.strength ?? 0)];
  let worst = null;
  for (const w of windows) {
    if (worst === null) { worst = w; continue; }
    const [a, b] = [rank(w), rank(worst)];
    const i = a.findIndex((v, k) => v !== b[k]);
    if (i >= 0 && a[i] < b[i]) worst = w;
  }
  return worst;
}

function layout(extra) {
  return {height: 260, margin: {l: 55, r: 20, t: 12, b: 36}, font: {size: 11},
          hovermode: "closest", showlegend: false, ...extra,
          xaxis: {type: "date", title: {text: ""}, ...(extra.xaxis || {})}};
}

function worstShape(worst) {
  return {type: "rect", xref: "x", yref: "paper", x0: plotTime(worst.window_start),
          x1: plotTime(worst.window_end), y0: 0, y1: 1, line: {color: RED, width: 2},
          fillcolor: RED, opacity: 0.12, layer: "below"};
}

function openReportOnClick(element, model, keyOf) {
  element.on("plotly_click", (event) => {
    const key = keyOf(event.points[0]);
    if (key != null) window.location.assign(reportUrl(model, key));
  });
}

async function plotHealth(element, model, windows, worst, range) {
  const x = windows.map(middle);
  const bands = [[0, UNHEALTHY, RED], [UNHEALTHY, WATCH, AMBER], [WATCH, 100, GREEN]].map(
    ([y0, y1, colour]) => ({type: "rect", xref: "paper", yref: "y", x0: 0, x1: 1, y0, y1,
                            fillcolor: colour, opacity: 0.07, line: {width: 0}, layer: "below"}));
  const annotations = [];
  if (worst && isRed(worst)) {
    const top = topFeature(worst);
    annotations.push({x: middle(worst), y: worst.health_score ?? 0, ax: 40,
                      ay: -40, showarrow: true, arrowcolor: RED, bgcolor: "white",
                      bordercolor: RED, font: {color: RED},
                      text: `worst: window ${worst.window_key}` +
                            (top ? ` · <b>${esc(top.name)}</b> drifted` : "")});
  }
  await Plotly.newPlot(element, [{
    type: "scatter", mode: "lines+markers", name: "health", x, customdata: windows.map((w) => w.window_key),
    y: windows.map((w) => w.health_score),
    line: {color: "#9e9e9e", width: 1.5},
    marker: {size: 9, color: windows.map(healthColour), line: {color: "#424242", width: 1}},
    hovertemplate: "window %{customdata}<br>%{x} UTC<br>health %{y:.1f}<br>click: report<extra></extra>",
  }], layout({yaxis: {range: [-3, 103], title: {text: "health"}}, xaxis: {range},
              shapes: [...bands, ...(worst && isRed(worst) ? [worstShape(worst)] : [])],
              annotations}), PLOT_CONFIG);
  openReportOnClick(element, model, (p) => p.customdata);
}

async function plotHeatmap(element, model, windows, worst, range) {
  const names = new Set();
  for (const w of windows) Object.keys(w.features || {}).forEach((n) => names.add(n));
  const peak = (name) => Math.max(0, ...windows.map((w) => strength(w.features?.[name]) ?? 0));
  const all = [...names].sort((a, b) => peak(b) - peak(a) || a.localeCompare(b));
  const features = all.slice(0, HEATMAP_FEATURES).reverse();  // most drifted on top
  const cell = (name, w) => w.features?.[name];
  const z = features.map((n) => windows.map((w) => {
    const s = strength(cell(n, w));
    return s == null ? null : Math.min(s, 3);
  }));
  const text = features.map((n) => windows.map((w) => (cell(n, w)?.drift ? "✕" : "")));
  const hover = features.map((n) => windows.map((w) => {
    const f = cell(n, w);
    return f == null ? `${esc(n)}: not scored` : `<b>${esc(n)}</b> · window ${w.window_key}<br>` +
      `${esc(f.method)} score ${fmt(f.score)}` + (f.p_value != null ? ` · p ${fmt(f.p_value)}` : "") +
      ` · threshold ${fmt(f.threshold)}<br>${f.drift ? "drifted" : "no drift"}`;
  }));
  const annotations = [];
  const top = worst && topFeature(worst);
  if (top && features.includes(top.name)) {
    annotations.push({x: middle(worst), y: top.name, ax: -50, ay: -25,
                      showarrow: true, arrowcolor: RED, bgcolor: "white", bordercolor: RED,
                      font: {color: RED},
                      text: `<b>${esc(top.name)}</b> ${esc(top.method)} ${fmt(top.score)}`});
  }
  const height = Math.max(260, 60 + 18 * features.length);
  await Plotly.newPlot(element, [{
    type: "heatmap", x: windows.map(middle), y: features, z, text,
    customdata: hover, texttemplate: "%{text}", textfont: {color: "white"},
    hovertemplate: "%{customdata}<extra></extra>", xgap: 1, ygap: 1, zmin: 0, zmax: 3,
    colorscale: [[0, "#e8f5e9"], [0.3, "#fff59d"], [0.333, "#fb8c00"], [1, RED]],
    colorbar: {thickness: 10, tickvals: [0, 1, 2, 3], ticktext: ["0", "1 threshold", "2", "≥3"]},
  }], layout({height, margin: {l: 90, r: 20, t: 12, b: 36}, xaxis: {range},
              yaxis: {type: "category", automargin: true}, annotations,
              title: all.length > features.length
                ? {text: `${features.length} most drifted of ${all.length} features`,
                   font: {size: 11}} : undefined}), PLOT_CONFIG);
  openReportOnClick(element, model, (p) => windows[p.pointIndex[1]]?.window_key);
}

function primaryMetric(windows) {
  for (const m of METRICS) {
    if (windows.some((w) => typeof w.performance?.[m] === "number")) return m;
  }
  return windows.some((w) => w.estimated_performance?.accuracy != null) ? "accuracy" : null;
}

async function plotPerformance(element, model, windows, worst, range) {
  const metric = primaryMetric(windows);
  const x = windows.map(middle);
  const keys = windows.map((w) => w.window_key);
  const completeness = windows.map((w) => {
    const p = w.performance;
    if (p == null) return 0;
    return p.label_completeness ?? (w.n_predictions ? (p.n_labels ?? 0) / w.n_predictions : 0);
  });
  const traces = [{
    type: "bar", name: "label completeness", x, y: completeness, yaxis: "y2",
    customdata: windows.map((w) => [w.window_key, w.performance?.n_labels ?? 0, w.n_predictions]),
    marker: {color: "#90caf9"}, opacity: 0.55,
    hovertemplate: "window %{customdata[0]}<br>labels %{customdata[1]} of %{customdata[2]}" +
                   " (%{y:.0%})<extra></extra>",
  }];
  if (metric) {
    traces.push({type: "scatter", mode: "lines+markers", name: `${metric} (measured)`, x,
                 customdata: keys, y: windows.map((w) => w.performance?.[metric] ?? null),
                 line: {color: "#1565c0", width: 2}, marker: {size: 7},
                 hovertemplate: `window %{customdata}<br>${metric} %{y:.3f} (measured)<extra></extra>`});
  }
  if (metric === "accuracy") {
    traces.push({type: "scatter", mode: "lines+markers", name: "accuracy (estimated)", x,
                 customdata: keys, y: windows.map((w) => w.estimated_performance?.accuracy ?? null),
                 line: {color: "#6a1b9a", width: 2, dash: "dash"}, marker: {size: 6, symbol: "diamond"},
                 hovertemplate: "window %{customdata}<br>accuracy %{y:.3f} (estimated, no labels)<extra></extra>"});
  }
  await Plotly.newPlot(element, traces, layout({
    showlegend: true, legend: {orientation: "h", y: -0.18}, margin: {l: 55, r: 55, t: 12, b: 50},
    yaxis: {title: {text: metric || "no labels yet"}, rangemode: "tozero"},
    yaxis2: {overlaying: "y", side: "right", range: [0, 1], tickformat: ".0%", showgrid: false,
             title: {text: "labelled"}},
    xaxis: {range}, shapes: worst && isRed(worst) ? [worstShape(worst)] : [],
  }), PLOT_CONFIG);
  openReportOnClick(element, model, (p) => (Array.isArray(p.customdata) ? p.customdata[0] : p.customdata));
}

const EPISODE_KINDS = (kind) => !kind.startsWith("retrain_") && kind !== "model_promoted";

async function plotAlerts(element, alerts, windows, range) {
  const lastEnd = windows.length ? windows[windows.length - 1].window_end : null;
  const traces = [];
  for (const [status, colour] of [["firing", RED], ["resolved", GREY]]) {
    const x = [], y = [], text = [];
    for (const a of alerts) {
      if (a.status !== status || !EPISODE_KINDS(a.kind) || !a.window_start) continue;
      const start = a.details?.first_window_start ?? a.window_start;
      const end = status === "resolved" ? a.window_end : (lastEnd > a.window_end ? lastEnd : a.window_end);
      x.push(plotTime(start), plotTime(end), null);
      y.push(a.kind, a.kind, null);
      const label = `${esc(a.severity)} · ${status}<br>${esc(a.summary)}`;
      text.push(label, label, null);
    }
    traces.push({type: "scatter", mode: "lines+markers", name: status, x, y, text,
                 connectgaps: false, line: {color: colour, width: 12},
                 marker: {color: colour, size: 12, symbol: "line-ns-open"},
                 hovertemplate: "%{text}<br>%{x} UTC<extra></extra>"});
  }
  const none = traces.every((t) => t.x.length === 0);
  await Plotly.newPlot(element, traces, layout({
    height: 200, showlegend: true, legend: {orientation: "h", y: -0.3}, xaxis: {range},
    yaxis: {type: "category", automargin: true},
    annotations: none ? [{text: "no alerts", showarrow: false, xref: "paper", yref: "paper",
                          x: 0.5, y: 0.5}] : [],
  }), PLOT_CONFIG);
}

const STATUS_COLOUR = {succeeded: GREEN, failed: RED, running: GREY};

async function plotRetrains(element, list, runs) {
  const label = (r) => (r.registered_version ? `v${r.registered_version}` : "") +
                       (r.promoted ? " ★ promoted" : "");
  await Plotly.newPlot(element, [{
    type: "scatter", mode: "markers+text", x: runs.map((r) => plotTime(r.started_at)),
    y: runs.map((r) => r.status), text: runs.map(label), textposition: "middle left",
    customdata: runs.map((r) => [esc(r.request_id), esc(r.trigger_alert_id || "schedule"),
                                 esc(r.detail?.reason || "")]),
    marker: {size: 14, color: runs.map((r) => STATUS_COLOUR[r.status] || GREY),
             symbol: runs.map((r) => (r.promoted ? "star" : "circle")),
             line: {color: "#424242", width: 1}},
    hovertemplate: "%{y} %{text}<br>started %{x} UTC<br>request %{customdata[0]}" +
                   "<br>trigger %{customdata[1]}<br>%{customdata[2]}<extra></extra>",
  }], layout({height: 180, yaxis: {type: "category", categoryorder: "array",
                                    categoryarray: ["failed", "running", "succeeded"]},
              annotations: runs.length ? [] : [{text: "no retrain runs", showarrow: false,
                                                xref: "paper", yref: "paper", x: 0.5, y: 0.5}]}),
  PLOT_CONFIG);
  element.on("plotly_click", (event) => {
    const run = runs[event.points[0].pointIndex];
    if (run?.run_url) window.open(run.run_url, "_blank", "noopener");
  });
  for (const r of [...runs].reverse()) {
    const li = document.createElement("li");
    li.className = `run status-${r.status}`;
    li.append(`${short(r.started_at)} ${r.status}${r.promoted ? " (promoted)" : ""}: `);
    li.append(link(r.run_url, r.mlflow_run_id ? `MLflow run ${r.mlflow_run_id.slice(0, 12)}` : "no MLflow run", "run-link"));
    if (r.registered_version) {
      li.append(" · ");
      li.append(link(r.model_version_url, `model version ${r.registered_version}`, "version-link"));
    }
    list.append(li);
  }
}

function link(href, text, className) {
  const node = document.createElement(href ? "a" : "span");
  node.className = className;
  node.textContent = text;
  if (href) { node.href = href; node.target = "_blank"; node.rel = "noopener"; }
  return node;
}

function verdict(p, model, windows, worst) {
  if (!windows.length) { p.textContent = "No closed windows yet."; return; }
  if (!isRed(worst)) {
    p.className = "verdict healthy";
    p.textContent = `All ${windows.length} windows healthy; lowest health ` +
                    `${fmt(worst.health_score, 1)} (window ${worst.window_key}).`;
    return;
  }
  p.className = "verdict unhealthy";
  const strong = (text, className) => {
    const node = document.createElement("strong");
    node.className = className;
    node.textContent = text;
    return node;
  };
  const top = topFeature(worst);
  p.append("Worst window: ", strong(`window ${worst.window_key}`, "worst-window"),
           ` (${short(worst.window_start)} – ${short(worst.window_end)} UTC), health ` +
           `${fmt(worst.health_score, 1)}${worst.drift_detected ? ", drift detected" : ""}`);
  if (top) {
    p.append("; top drifted feature ", strong(top.name, "top-feature"),
             ` (${top.method}, score ${fmt(top.score)}` +
             (top.p_value != null ? `, p ${fmt(top.p_value)}` : "") + ")");
  } else if ((worst.alerts || []).length) {
    p.append(`; alerts: ${worst.alerts.join(", ")}`);
  }
  p.append(" · ", link(reportUrl(model, worst.window_key), "drill-down report", "worst-report"));
}

async function renderModel(summary) {
  const model = summary.name;
  const [windows, alerts, runs] = await Promise.all([
    api(`/api/models/${enc(model)}/windows?limit=${WINDOWS}`),
    api(`/api/alerts?model=${enc(model)}`),
    api(`/api/retrains?model=${enc(model)}`),
  ]);
  const section = document.getElementById("model-template").content.firstElementChild.cloneNode(true);
  section.id = `model-${model}`;
  section.dataset.model = model;
  section.querySelector(".model-name").textContent = `${model} · ${summary.task}`;
  document.getElementById("models").append(section);
  const worst = worstWindow(windows);
  verdict(section.querySelector(".verdict"), model, windows, worst);
  const nav = document.createElement("a");
  nav.href = `#model-${enc(model)}`;
  nav.textContent = model;
  nav.className = windows.length && isRed(worst) ? "unhealthy" : "";
  document.getElementById("models-nav").append(nav);
  if (!windows.length) {  // nothing to draw yet: the verdict says so
    section.querySelector(".grid").remove();
    return;
  }
  const range = windows.length
    ? [plotTime(windows[0].window_start), plotTime(windows[windows.length - 1].window_end)] : undefined;
  const plot = (name) => section.querySelector(`.plot.${name}`);
  await plotHealth(plot("health"), model, windows, worst, range);
  await plotHeatmap(plot("heatmap"), model, windows, worst, range);
  await plotPerformance(plot("performance"), model, windows, worst, range);
  await plotAlerts(plot("alerts"), alerts, windows, range);
  await plotRetrains(plot("retrains"), section.querySelector(".retrain-links"), runs);
  const reports = section.querySelector("ol.reports");
  for (const w of windows) {
    const li = document.createElement("li");
    if (w === worst && isRed(w)) li.className = "worst";
    li.append(link(reportUrl(model, w.window_key),
                   `window ${w.window_key} · ${short(w.window_start)} – ${short(w.window_end)}` +
                   ` · health ${fmt(w.health_score, 1)}`, "report-link"));
    reports.append(li);
  }
}

async function load() {
  document.body.dataset.state = "loading";
  document.getElementById("models").replaceChildren();
  document.getElementById("models-nav").replaceChildren();
  const models = await api("/api/models");
  for (const summary of models) await renderModel(summary);
  if (!models.length) document.getElementById("models").textContent = "No models are monitored yet.";
  document.body.dataset.state = "ready";
}

function askForToken(message) {
  const form = document.getElementById("token-form");
  form.hidden = false;
  document.getElementById("token-error").textContent = message || "";
  document.body.dataset.state = "token";
}

async function show() {
  try {
    await load();
    document.getElementById("token-form").hidden = true;
  } catch (err) {
    if (err instanceof NeedToken) {
      sessionStorage.removeItem(TOKEN_KEY);
      askForToken("That token was refused; try again.");
      return;
    }
    const box = document.getElementById("error");
    box.hidden = false;
    box.textContent = `Could not draw the dashboard: ${err.message}`;
    document.body.dataset.state = "error";
  }
}

async function start() {
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value);
    show();
  });
  let settings;
  try {
    settings = await (await fetch("/dashboard.json")).json();
  } catch (err) {
    settings = {token_required: false};  // show() then says what fails
  }
  if (settings.token_required && !sessionStorage.getItem(TOKEN_KEY)) askForToken();
  else await show();
}

start();
