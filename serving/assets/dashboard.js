// playsource dashboard: fetches the two series from the JSON API and draws the share of plays
// per row over time as stacked areas (SVG). No dependencies.
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const W = 720, H = 300, M = { top: 10, right: 12, bottom: 28, left: 40 };
  const MAX_ROWS = 10;
  const PALETTE = ["#b4232a", "#2f6db5", "#e08a1e", "#2e9e6b", "#7b4fb3", "#c2558f",
                   "#4aa3b8", "#8c6d31", "#5d6b7a", "#9bbb3c", "#a0a7b4"];
  const $ = (id) => document.getElementById(id);
  const colors = new Map();
  const colorOf = (row) => {
    if (row === "other") return PALETTE[PALETTE.length - 1];
    if (!colors.has(row)) colors.set(row, PALETTE[colors.size % (PALETTE.length - 1)]);
    return colors.get(row);
  };

  const pad = (n) => String(n).padStart(2, "0");
  const toInput = (d) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  const fromInput = (v) => (v.length === 16 ? v + ":00Z" : v.replace(/Z?$/, "Z"));
  const inputFromIso = (s) => toInput(new Date(s));

  function el(name, attrs, parent) {
    const e = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (parent) parent.appendChild(e);
    return e;
  }

  function setStatus(text, isError) {
    const s = $("status");
    s.textContent = text;
    s.className = isError ? "error" : "";
  }

  async function getJson(url) {
    const resp = await fetch(url, { headers: { accept: "application/json" } });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(body.detail || `${resp.status} ${resp.statusText}`);
    return body;
  }

  // Picks the rows to draw (top MAX_ROWS by plays over the range, the rest as "other").
  function layers(series) {
    const totals = new Map();
    for (const b of series) for (const r of b.rows) totals.set(r.row_type, (totals.get(r.row_type) || 0) + r.plays);
    const ranked = [...totals.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const kept = ranked.slice(0, MAX_ROWS).map((e) => e[0]);
    const hasOther = ranked.length > MAX_ROWS;
    const all = ranked.reduce((s, e) => s + e[1], 0);
    const names = hasOther ? [...kept, "other"] : kept;
    const shares = series.map((b) => {
      const m = new Map(names.map((n) => [n, 0]));
      for (const r of b.rows) {
        const n = kept.includes(r.row_type) ? r.row_type : "other";
        m.set(n, m.get(n) + (b.plays > 0 ? r.plays / b.plays : 0));
      }
      return m;
    });
    const overall = new Map(names.map((n) => [n, 0]));
    for (const [n, p] of ranked) {
      const k = kept.includes(n) ? n : "other";
      overall.set(k, overall.get(k) + (all > 0 ? p / all : 0));
    }
    return { names, shares, overall };
  }

  function draw(kind, data) {
    const chart = $(`${kind}-chart`), legend = $(`${kind}-legend`);
    chart.textContent = "";
    legend.textContent = "";
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${kind} share of plays per row`, "data-view": kind }, chart);
    const iw = W - M.left - M.right, ih = H - M.top - M.bottom;
    const g = el("g", { transform: `translate(${M.left},${M.top})` }, svg);
    const series = data.series;
    const n = series.length;
    const x = (i) => (n <= 1 ? iw / 2 : (i / (n - 1)) * iw);
    const y = (v) => ih - v * ih;
    const grid = el("g", { class: "grid" }, g);
    const axis = el("g", { class: "axis" }, g);
    for (const v of [0, 0.25, 0.5, 0.75, 1]) {
      el("line", { x1: 0, x2: iw, y1: y(v), y2: y(v) }, grid);
      const t = el("text", { x: -6, y: y(v) + 4, "text-anchor": "end" }, axis);
      t.textContent = `${Math.round(v * 100)}%`;
    }
    const ticks = Math.min(n, 6);
    for (let k = 0; k < ticks; k++) {
      const i = ticks === 1 ? 0 : Math.round((k * (n - 1)) / (ticks - 1));
      const anchor = ticks > 1 && k === 0 ? "start" : ticks > 1 && k === ticks - 1 ? "end" : "middle";
      const t = el("text", { x: x(i), y: ih + 18, "text-anchor": anchor }, axis);
      const b = series[i].bucket;
      t.textContent = data.granularity === "day" ? b.slice(0, 10) : `${b.slice(5, 10)} ${b.slice(11, 16)}`;
    }
    const { names, shares, overall } = layers(series);
    if (names.length === 0) {
      const t = el("text", { x: iw / 2, y: ih / 2, "text-anchor": "middle", class: "empty" }, g);
      t.textContent = "No plays in this range.";
      return 0;
    }
    // Stack bottom-up in legend order (largest first at the bottom).
    const base = new Array(n).fill(0);
    names.forEach((name) => {
      const top = shares.map((m, i) => base[i] + m.get(name));
      let d = "";
      for (let i = 0; i < n; i++) d += `${i ? "L" : "M"}${x(i).toFixed(2)},${y(top[i]).toFixed(2)}`;
      for (let i = n - 1; i >= 0; i--) d += `L${x(i).toFixed(2)},${y(base[i]).toFixed(2)}`;
      if (n === 1) d = `M${x(0) - 8},${y(top[0])}L${x(0) + 8},${y(top[0])}L${x(0) + 8},${y(base[0])}L${x(0) - 8},${y(base[0])}`;
      const p = el("path", { class: "area", d: d + "Z", fill: colorOf(name), "data-row": name,
                             "data-share": overall.get(name).toFixed(6) }, g);
      el("title", {}, p).textContent = `${name}: ${(overall.get(name) * 100).toFixed(1)}% of plays in range`;
      for (let i = 0; i < n; i++) base[i] = top[i];
      const li = document.createElement("li");
      li.dataset.row = name;
      li.innerHTML = `<span class="swatch" style="background:${colorOf(name)}"></span><span class="name"></span><span class="pct"></span>`;
      li.querySelector(".name").textContent = name;
      li.querySelector(".pct").textContent = `${(overall.get(name) * 100).toFixed(1)}%`;
      legend.appendChild(li);
    });
    // Hover: a cursor line and a tooltip with the bucket's rows.
    const cursor = el("line", { class: "cursor", y1: 0, y2: ih, visibility: "hidden" }, g);
    const hit = el("rect", { x: 0, y: 0, width: iw, height: ih, fill: "transparent" }, g);
    const tip = $("tooltip");
    hit.addEventListener("mousemove", (ev) => {
      const r = svg.getBoundingClientRect();
      const px = ((ev.clientX - r.left) / r.width) * W - M.left;
      const i = Math.max(0, Math.min(n - 1, Math.round(n <= 1 ? 0 : (px / iw) * (n - 1))));
      cursor.setAttribute("x1", x(i)); cursor.setAttribute("x2", x(i));
      cursor.setAttribute("visibility", "visible");
      const b = series[i];
      tip.innerHTML = "<strong></strong><table></table>";
      tip.querySelector("strong").textContent = `${b.bucket} · ${b.plays} plays`;
      const table = tip.querySelector("table");
      for (const row of b.rows.slice(0, 12)) {
        const tr = table.insertRow();
        tr.insertCell().textContent = row.row_type;
        tr.insertCell().textContent = String(row.plays);
        tr.insertCell().textContent = `${(row.share * 100).toFixed(1)}%`;
      }
      tip.style.left = `${ev.clientX + 14}px`;
      tip.style.top = `${ev.clientY + 14}px`;
      tip.hidden = false;
    });
    hit.addEventListener("mouseleave", () => { tip.hidden = true; cursor.setAttribute("visibility", "hidden"); });
    return names.length;
  }

  function query() {
    const p = new URLSearchParams();
    p.set("from", fromInput($("from").value));
    p.set("to", fromInput($("to").value));
    p.set("granularity", $("granularity").value);
    const country = $("country").value.trim().toUpperCase();
    const device = $("device").value.trim().toLowerCase();
    if (country) p.set("country", country);
    if (device) p.set("device", device);
    return p;
  }

  async function refresh() {
    const main = $("charts");
    main.dataset.state = "loading";
    setStatus("Loading…");
    const p = query();
    history.replaceState(null, "", `?${p}`);
    try {
      const [sop, sod] = await Promise.all([
        getJson(`/v1/source-of-play?${p}`),
        getJson(`/v1/source-of-discovery?${p}`),
      ]);
      const drawn = draw("sop", sop) + draw("sod", sod);
      const plays = sop.series.reduce((s, b) => s + b.plays, 0);
      setStatus(`${plays} plays in ${sop.series.length} ${sop.granularity} buckets from ${sop.from} to ${sop.to}.`);
      const src = sop.source;
      $("freshness").textContent = `batch complete through ${src.batch_complete_through || "—"}, realtime up to ${src.realtime_high_water || "—"}`;
      main.dataset.state = drawn > 0 ? "ready" : "empty";
    } catch (e) {
      setStatus(e.message, true);
      main.dataset.state = "error";
    }
  }

  async function init() {
    const q = new URLSearchParams(location.search);
    for (const k of ["country", "device"]) if (q.get(k)) $(k).value = q.get(k);
    if (q.get("granularity") === "day") $("granularity").value = "day";
    if (q.get("from") && q.get("to")) {
      $("from").value = inputFromIso(q.get("from"));
      $("to").value = inputFromIso(q.get("to"));
    } else {
      let end = new Date();
      try {
        const f = await getJson("/v1/freshness");
        if (f.realtime_high_water) end = new Date(f.realtime_high_water);
        else if (f.batch_complete_through) end = new Date(`${f.batch_complete_through}T23:59:59Z`);
      } catch (_) { /* keep now */ }
      end = new Date(Math.ceil(end.getTime() / 3600e3) * 3600e3);
      $("to").value = toInput(end);
      $("from").value = toInput(new Date(end.getTime() - 48 * 3600e3));
    }
    $("controls").addEventListener("submit", (ev) => { ev.preventDefault(); refresh(); });
    await refresh();
  }

  init();
})();
