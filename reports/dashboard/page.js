// The dashboard's views. Every number comes from the embedded data (reports/dashboard/data.py); this only draws.
"use strict";
const DATA = JSON.parse(document.getElementById("data").textContent);
const VIEWS = {verdicts: "Tonight's verdicts", grid: "Grid", batch: "Latency vs batch", serving: "Serving sweeps",
               kernels: "Kernels", machines: "Machines"};
const CONFIG = {displaylogo: false, responsive: true};
const view = document.getElementById("view");
// The machine shown first: ?machine=NAME, else the one whose latest run is the newest (tonight's).
const newest = m => (m.runs.length ? m.runs[m.runs.length - 1].time : "");
let machine = DATA.machines.find(m => m.name === new URLSearchParams(location.search).get("machine")) ||
  DATA.machines.slice().sort((a, b) => newest(b).localeCompare(newest(a)))[0];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}
const fmt = (x, digits = 4) => x === null || x === undefined ? "-" : Number(x).toPrecision(digits);
const pct = x => x === null || x === undefined ? "-" : (100 * x).toFixed(1) + "%";
const timeOf = i => machine.runs[i].time;
const label = a => [a.backend, a.mode, a.kernel === "torch" ? "" : "k=" + a.kernel].filter(Boolean).join(" ");
function plot(id, traces, layout) {
  const div = el("div", {id, class: "plot"});
  view.append(div);
  Plotly.newPlot(div, traces, Object.assign({margin: {t: 36, r: 16, b: 40, l: 64}}, layout), CONFIG);
  return div;
}
function select(name, values, current, onchange) {
  const s = el("select", {id: "select-" + name, onchange: e => onchange(e.target.value)});
  for (const v of values) s.append(el("option", v === current ? {value: v, selected: ""} : {value: v}, String(v)));
  return el("label", {}, name + " ", s);
}
const unique = xs => [...new Set(xs)].sort((a, b) => (typeof a === "number" ? a - b : String(a).localeCompare(b)));

// --- tonight's verdicts: sortable, with an only-changed filter -------------------------------------------------
let sortKey = "order", sortUp = true, onlyChanged = false;
const ORDER = {regression: 0, suspect: 1, improvement: 2, ok: 3, insufficient_data: 4};
function verdictsView() {
  view.append(el("h2", {}, "Tonight's verdicts"));
  for (const n of machine.notes) view.append(el("div", {class: "note"}, n));
  if (machine.oracle.length) {
    const t = el("table", {id: "oracle"}, el("tr", {}, el("th", {}, "cell"), el("th", {}, "oracle"),
                                             el("th", {}, "what")));
    for (const o of machine.oracle)
      t.append(el("tr", {class: o.verdict}, el("td", {}, o.cell), el("td", {}, o.verdict), el("td", {}, o.message)));
    view.append(el("h3", {}, "Correctness"), t);
  }
  const box = el("input", {type: "checkbox", id: "only-changed", onchange: e => { onlyChanged = e.target.checked;
                                                                                   render(); }});
  box.checked = onlyChanged;
  view.append(el("div", {class: "controls"}, el("label", {}, box, " only changed (not ok, not insufficient_data)")));
  const cols = [["cell", "cell"], ["metric", "metric"], ["order", "verdict"], ["change", "change"],
                ["threshold", "threshold"], ["p", "p"], ["q", "q"], ["baseline", "baseline"], ["tonight", "tonight"],
                ["points", "nights"], ["reason", "note"]];
  const head = el("tr");
  for (const [key, name] of cols)
    head.append(el("th", {"data-key": key, onclick: () => { sortUp = sortKey === key ? !sortUp : true;
                                                            sortKey = key; render(); }},
                    name + (sortKey === key ? (sortUp ? " ▲" : " ▼") : "")));
  const table = el("table", {id: "verdicts"}, head);
  const rows = machine.verdicts.filter(v => !onlyChanged || !["ok", "insufficient_data"].includes(v.verdict))
    .map(v => Object.assign({order: ORDER[v.verdict]}, v));
  rows.sort((a, b) => {
    const x = a[sortKey], y = b[sortKey];
    const c = x === y ? 0 : x === null || x === undefined ? 1 : y === null || y === undefined ? -1 :
      typeof x === "number" ? x - y : String(x).localeCompare(String(y));
    return sortUp ? c : -c;
  });
  for (const v of rows) {
    const cell = v.kind === "cells" ? el("a", {href: "#cell=" + encodeURIComponent(v.series)}, v.cell) : v.cell;
    table.append(el("tr", {class: v.verdict, "data-series": v.series, "data-metric": v.metric},
      el("td", {}, cell), el("td", {}, v.metric),
      el("td", {class: "verdict"}, v.verdict + (v.acknowledged ? " (acknowledged)" : "")),
      el("td", {class: "num ratio"}, v.ratio || "-"), el("td", {class: "num"}, pct(v.threshold)),
      el("td", {class: "num"}, fmt(v.verdict === "improvement" ? v.p_better : v.p, 2)),
      el("td", {class: "num"}, fmt(v.q, 2)), el("td", {class: "num"}, fmt(v.baseline)),
      el("td", {class: "num"}, fmt(v.tonight)), el("td", {class: "num"}, v.points),
      el("td", {}, v.acknowledged || v.reason)));
  }
  view.append(table, el("div", {class: "note"}, rows.length + " of " + machine.verdicts.length + " verdicts shown"));
}

// --- grid: model × backend per precision and batch, coloured by the p50 change ---------------------------------
let gridPrecision = null, gridBatch = null;
function gridView() {
  const p50 = machine.verdicts.filter(v => v.kind === "cells" && v.metric === "p50_ms");
  if (!p50.length) { view.append(el("p", {class: "empty"}, "No cells tonight.")); return; }
  const precisions = unique(p50.map(v => v.axes.precision)), batches = unique(p50.map(v => v.axes.batch));
  gridPrecision = precisions.includes(gridPrecision) ? gridPrecision : precisions[0];
  gridBatch = batches.includes(gridBatch) ? gridBatch : batches[0];
  view.append(el("h2", {}, "p50 change against the baseline"), el("div", {class: "controls"},
    select("precision", precisions, gridPrecision, v => { gridPrecision = v; render(); }),
    select("batch", batches, gridBatch, v => { gridBatch = Number(v); render(); })));
  const here = p50.filter(v => v.axes.precision === gridPrecision && v.axes.batch === gridBatch);
  const rows = unique(here.map(v => v.axes.model + " " + v.axes.phase)), cols = unique(here.map(v => label(v.axes)));
  const z = rows.map(() => cols.map(() => null)), text = rows.map(() => cols.map(() => ""));
  for (const v of here) {
    const r = rows.indexOf(v.axes.model + " " + v.axes.phase), c = cols.indexOf(label(v.axes));
    z[r][c] = v.change === null || v.verdict === "insufficient_data" ? null : 100 * v.change;
    // No colour without a verdict: a change with too little history to judge is shown, not coloured.
    text[r][c] = (v.verdict === "insufficient_data" ? "n/a" : v.verdict) + "<br>" + (v.ratio || "");
  }
  plot("plot-grid", [{type: "heatmap", x: cols, y: rows, z, text, texttemplate: "%{text}", zmid: 0, zmin: -20,
                      zmax: 20, colorscale: "RdBu", colorbar: {title: {text: "% change"}}}],
       {title: {text: `${gridPrecision}, batch ${gridBatch}: red is slower`}, height: 120 + 40 * rows.length});
}

// --- one cell: nightly p50 with its CI, the baseline band, software markers, p99, throughput, memory, oracle ----
function cellView(key) {
  const s = machine.series[key];
  if (!s) { view.append(el("p", {class: "empty"}, "No series " + key + " on this machine.")); return; }
  view.append(el("h2", {}, s.cell), el("div", {class: "note"}, "series " + key));
  const x = s.points.map(p => timeOf(p.run));
  const shapes = [], annotations = [];
  for (const m of machine.markers) {
    if (m.time < x[0] || m.time > x[x.length - 1]) continue;
    shapes.push({type: "line", xref: "x", yref: "paper", x0: m.time, x1: m.time, y0: 0, y1: 1,
                 line: {dash: "dot", color: "#884"}});
    annotations.push({x: m.time, yref: "paper", y: 1, text: "software", hovertext: m.changes.join("<br>"),
                      showarrow: false, yanchor: "bottom", font: {size: 10, color: "#884"}});
  }
  const v = machine.verdicts.find(v => v.series === key && v.metric === "p50_ms");
  if (v && v.baseline !== null && v.threshold !== null) {
    const first = s.points[Math.max(0, s.points.length - 1 - v.points)];
    shapes.push({type: "rect", xref: "x", yref: "y", x0: timeOf(first.run), x1: x[x.length - 1],
                 y0: v.baseline * (1 - v.threshold), y1: v.baseline * (1 + v.threshold),
                 fillcolor: "rgba(80,140,220,0.15)", line: {width: 0}, layer: "below"});
    view.append(el("div", {class: "note " + v.verdict, id: "cell-verdict"},
                   `tonight: ${v.verdict} ${v.ratio} (band: baseline median ± threshold ${pct(v.threshold)})`));
  }
  const ci = s.points.map(p => p.ci || [p.p50, p.p50]);
  plot("plot-p50", [
    {name: "p50", x, y: s.points.map(p => p.p50), mode: "lines+markers",
     error_y: {type: "data", symmetric: false, array: ci.map((c, i) => c[1] - s.points[i].p50),
               arrayminus: ci.map((c, i) => s.points[i].p50 - c[0])}},
    {name: "p99", x, y: s.points.map(p => p.p99), mode: "lines+markers", line: {dash: "dash"}}],
    {title: {text: "latency, ms (p50 with its 95% CI; band: tonight's baseline ± threshold)"}, shapes,
     annotations});
  plot("plot-throughput", [{name: "throughput", x, y: s.points.map(p => p.throughput), mode: "lines+markers"}],
       {title: {text: "throughput, sequences/s"}, shapes: shapes.filter(sh => sh.type === "line")});
  plot("plot-memory", [{name: "peak memory", x, y: s.points.map(p => p.memory), mode: "lines+markers"}],
       {title: {text: "peak memory, MiB"}, shapes: shapes.filter(sh => sh.type === "line")});
  plot("plot-oracle", [
    {name: "max rel err", x, y: s.points.map(p => p.rel_err), mode: "lines+markers",
     marker: {color: s.points.map(p => p.passed ? "#2a7" : "#d22")}},
    {name: "tolerance", x, y: s.points.map(p => p.tolerance), mode: "lines", line: {dash: "dot", color: "#d22"}}],
    {title: {text: "oracle: max relative error against its tolerance (red: failed)"}, yaxis: {type: "log"}});
}

// --- latency against batch, per backend and mode ---------------------------------------------------------------
let batchSel = {model: null, phase: null, precision: null};
function batchView() {
  const all = Object.values(machine.series);
  if (!all.length) { view.append(el("p", {class: "empty"}, "No cells.")); return; }
  const controls = el("div", {class: "controls"});
  for (const axis of ["model", "phase", "precision"]) {
    const values = unique(all.map(s => s.axes[axis]));
    if (!values.includes(batchSel[axis])) batchSel[axis] = values[0];
    controls.append(select(axis, values, batchSel[axis], v => { batchSel[axis] = v; render(); }));
  }
  view.append(el("h2", {}, "Latency against batch (each series' latest night)"), controls);
  const here = all.filter(s => ["model", "phase", "precision"].every(a => s.axes[a] === batchSel[a]) && !s.sweep);
  const lines = {};
  for (const s of here) (lines[label(s.axes)] ||= []).push([s.axes.batch, s.points[s.points.length - 1].p50]);
  plot("plot-batch", Object.entries(lines).map(([name, pts]) => {
    pts.sort((a, b) => a[0] - b[0]);
    return {name, x: pts.map(p => p[0]), y: pts.map(p => p[1]), mode: "lines+markers"};
  }), {xaxis: {type: "log", title: {text: "batch"}}, yaxis: {type: "log", title: {text: "p50 ms"}}, height: 480});
}

// --- serving sweeps: throughput against latency ---------------------------------------------------------------
function servingView() {
  const sweeps = Object.values(machine.series).filter(s => s.sweep);
  view.append(el("h2", {}, "Serving sweeps: throughput against latency (latest night)"));
  if (!sweeps.length) { view.append(el("p", {class: "empty"}, "No serving sweeps on this machine.")); return; }
  plot("plot-serving", sweeps.map(s => ({name: s.cell, x: s.sweep.map(l => l.p50), y: s.sweep.map(l => l.requests_per_s),
    text: s.sweep.map(l => "concurrency " + l.concurrency), mode: "lines+markers"})),
    {xaxis: {title: {text: "p50 latency, ms"}}, yaxis: {title: {text: "requests/s"}}, height: 480});
}

// --- kernel micro-benchmarks: GB/s and share of HBM -----------------------------------------------------------
function kernelsView() {
  const ks = machine.kernels.filter(k => !k.error);
  view.append(el("h2", {}, "Kernel micro-benchmarks (latest run of each): achieved GB/s, share of HBM copy"));
  if (!ks.length) { view.append(el("p", {class: "empty"}, "No kernel micro-benchmarks on this machine.")); return; }
  const names = ks.map(k => `${k.op} ${k.dtype} ${Object.entries(k.shape || {}).map(e => e.join("=")).join(" ")} · ${k.provider}`);
  plot("plot-kernels", [{type: "bar", orientation: "h", y: names, x: ks.map(k => k.gbps),
    text: ks.map(k => pct(k.hbm_fraction) + " of HBM"), textposition: "auto",
    marker: {color: ks.map(k => k.hbm_fraction), colorscale: "Viridis", cmin: 0, cmax: 1,
             colorbar: {title: {text: "share of HBM"}}}}],
    {xaxis: {title: {text: "GB/s"}}, yaxis: {automargin: true}, height: 120 + 18 * ks.length});
  const failed = machine.kernels.filter(k => k.error);
  for (const k of failed) view.append(el("div", {class: "note"}, `${k.id}: not timed, ${k.error}`));
}

// --- machines and their software ------------------------------------------------------------------------------
function machinesView() {
  view.append(el("h2", {}, "Machines"));
  for (const m of DATA.machines) {
    view.append(el("h3", {}, m.name), el("div", {class: "note"}, Object.entries(m.hardware)
      .map(([k, v]) => `${k}: ${v ?? "unknown"}`).join(" · ")));
    const t = el("table", {}, el("tr", {}, ...["time", "run", "source", "commit", "cells", "kernels", "software"]
      .map(h => el("th", {}, h))));
    for (const r of m.runs)
      t.append(el("tr", {}, el("td", {}, r.time), el("td", {}, r.id), el("td", {}, r.source),
        el("td", {}, (r.commit || "-").slice(0, 12)), el("td", {class: "num"}, r.cells), el("td", {class: "num"}, r.kernels),
        el("td", {}, Object.entries(r.software).filter(e => e[1]).map(e => e.join(" ")).join(", "))));
    view.append(t);
    for (const mk of m.markers) view.append(el("div", {class: "note"}, `${mk.time}: ${mk.changes.join(", ")}`));
  }
  for (const p of DATA.problems) view.append(el("div", {class: "note"}, p));
}

function render() {
  const hash = decodeURIComponent(location.hash.slice(1)) || "verdicts";
  view.replaceChildren();
  const nav = document.getElementById("nav");
  nav.replaceChildren(...Object.entries(VIEWS).map(([k, name]) =>
    el("a", {href: "#" + k, class: hash === k ? "active" : "", style: "margin-right:12px"}, name)));
  if (!machine) { view.append(el("p", {class: "empty"}, "The history is empty.")); return; }
  if (hash.startsWith("cell=")) cellView(hash.slice(5));
  else ({verdicts: verdictsView, grid: gridView, batch: batchView, serving: servingView, kernels: kernelsView,
         machines: machinesView}[hash] || verdictsView)();
}

const chooser = document.getElementById("machine");
DATA.machines.forEach((m, i) => {
  const option = el("option", {value: i}, m.name);
  option.selected = m === machine;
  chooser.append(option);
});
chooser.addEventListener("change", e => { machine = DATA.machines[Number(e.target.value)]; render(); });
window.addEventListener("hashchange", render);
render();
