// The dashboard's experiments panel: per arm the report's numbers with their 95% intervals, the
// comparison with the control, the sample-ratio check, interleaving's wins and sign test, and each
// rate over time (a line per arm over its shaded interval, inline SVG). Every number comes from the
// engine's report (evaluation/experiments.py) through /dashboard/data; a stopped experiment is a
// collapsed <details> whose report is fetched when it is opened. Text goes in as text nodes or
// attributes (Shop.el, textContent), never as HTML.
"use strict";
const Experiments = (() => {
  const { api, el } = Shop;
  const SVG = "http://www.w3.org/2000/svg";
  const COLORS = ["#0b6bcb", "#d9480f", "#2b8a3e", "#7048e8", "#c2255c"];
  const pct = (v) => (v === null || v === undefined ? "–" : (100 * v).toFixed(1) + "%");
  const num = (v) => (v === null || v === undefined ? "–" : Number(v).toFixed(2));
  const pval = (p) => (p === null || p === undefined ? "p –" : p < 0.001 ? "p < 0.001" : `p = ${p.toFixed(3)}`);
  //: [report key, title, formatter]
  const METRICS = [
    ["ctr", "CTR", pct],
    ["add_to_cart_rate", "Add-to-cart rate", pct],
    ["conversion_rate", "Conversion rate", pct],
    ["revenue_per_1000", "Revenue per 1,000 impressions", num],
  ];
  const when = (t) => new Date(t * 1000).toLocaleString();
  // what was fetched for opened stopped experiments, so a refresh keeps them open and filled
  const opened = new Map();

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // One rate over time: a line per arm, its 95% interval shaded behind it, a dot per point (so a
  // single point shows), the y axis from 0.
  function lineChart(title, id, times, arms, key, format) {
    const box = el("div", { class: "chart", "data-chart": id }, el("h4", {}, title));
    const w = 460, h = 170, left = 52, right = 10, top = 8, bottom = 22;
    const s = svg("svg", { width: "100%", viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": title });
    const all = arms.flatMap(([, a]) => [...a[key].value, ...a[key].ci_high]).filter((v) => v !== null);
    const ymax = Math.max(1e-12, ...all);
    const t0 = times[0], t1 = times[times.length - 1];
    const x = (t) => (t1 > t0 ? left + ((w - left - right) * (t - t0)) / (t1 - t0) : (left + w - right) / 2);
    const y = (v) => top + (h - top - bottom) * (1 - Math.max(0, v) / ymax);
    const axis = { stroke: "#e3e6ec" };
    s.append(svg("line", { x1: left, y1: y(0), x2: w - right, y2: y(0), ...axis }));
    s.append(svg("line", { x1: left, y1: top, x2: left, y2: y(0), ...axis }));
    const small = { "font-size": 10, fill: "#687083" };
    s.append(svg("text", { x: left - 4, y: y(ymax) + 8, "text-anchor": "end", ...small }, format(ymax)));
    s.append(svg("text", { x: left - 4, y: y(0), "text-anchor": "end", ...small }, format(0)));
    if (times.length) {
      s.append(svg("text", { x: left, y: h - 6, ...small }, when(t0)));
      if (t1 > t0) s.append(svg("text", { x: w - right, y: h - 6, "text-anchor": "end", ...small }, when(t1)));
    }
    arms.forEach(([name, a], n) => {
      const color = COLORS[n % COLORS.length];
      const m = a[key];
      const band = times.map((t, i) => [t, m.ci_low[i], m.ci_high[i]]).filter(([, lo, hi]) => lo !== null && hi !== null);
      if (band.length) {
        const upper = band.map(([t, , hi]) => `${x(t)},${y(hi)}`);
        const lower = band.map(([t, lo]) => `${x(t)},${y(lo)}`).reverse();
        // one point's interval is a vertical bar: widen it so it shows
        const pts = band.length > 1 ? [...upper, ...lower] : [`${x(band[0][0]) - 3},${y(band[0][2])}`, `${x(band[0][0]) + 3},${y(band[0][2])}`,
          `${x(band[0][0]) + 3},${y(band[0][1])}`, `${x(band[0][0]) - 3},${y(band[0][1])}`];
        s.append(svg("polygon", { points: pts.join(" "), fill: color, "fill-opacity": 0.15, class: "band", "data-arm": name }));
      }
      const pts = times.map((t, i) => [t, m.value[i]]).filter(([, v]) => v !== null);
      s.append(svg("polyline", { points: pts.map(([t, v]) => `${x(t)},${y(v)}`).join(" "), fill: "none", stroke: color,
        "stroke-width": 2, class: "line", "data-arm": name }));
      for (const [t, v] of pts) s.append(svg("circle", { cx: x(t), cy: y(v), r: 2.5, fill: color }));
    });
    box.append(s);
    box.append(el("div", { class: "legend" },
      arms.map(([name], n) => el("span", {}, el("i", { style: `background:${COLORS[n % COLORS.length]}` }), name))));
    return box;
  }

  function armsTable(r) {
    const arms = Object.entries(r.arms);
    const interval = (m, f) => (m.ci_low === null ? f(m.value) : `${f(m.value)} [${f(m.ci_low)}, ${f(m.ci_high)}]`);
    return el("table", { class: "arms" },
      el("thead", {}, el("tr", {}, ["arm", "version", "users", "impressions", ...METRICS.map(([, t]) => t)].map((t) => el("th", {}, t)))),
      el("tbody", {}, arms.map(([name, a]) =>
        el("tr", { "data-arm": name },
          el("td", {}, name), el("td", {}, a.version), el("td", { "data-field": "users" }, a.users),
          el("td", { "data-field": "impressions" }, a.impressions),
          METRICS.map(([k, , f]) => el("td", { "data-metric": k }, interval(a[k], f)))))));
  }

  function comparison(r) {
    const c = r.comparison;
    const out = [];
    const srm = c.srm;
    const of = srm.of ? ` (${srm.of})` : " (users per arm)";
    out.push(el("p", { class: "srm " + (srm.mismatch ? "bad" : "ok"), "data-srm": srm.mismatch ? "mismatch" : "ok" },
      `Sample ratio${of}: ${srm.observed.join(" / ")}, expected ${srm.expected.map((v) => v.toFixed(1)).join(" / ")}, ` +
      `${pval(srm.p_value)}: ` + (srm.mismatch ? "MISMATCH, the other numbers cannot be trusted" : "no mismatch")));
    if (c.interleaving) {
      const il = c.interleaving;
      const wins = Object.entries(il.wins).map(([a, n]) => `${a} wins ${n}`).join(", ");
      out.push(el("p", { class: "interleaving", "data-interleaving": "1" },
        `Interleaving: ${wins}, ties ${il.ties}, of ${il.requests_with_clicks} requests with clicks (${il.requests} requests); ` +
        `sign test ${pval(il.p_value)}`));
    }
    const rows = Object.entries(c.arms).map(([name, cmp]) =>
      el("tr", { "data-compare": name }, el("td", {}, `${name} vs ${c.control}`),
        METRICS.map(([k]) => {
          const d = cmp[k];
          const rel = d.relative_difference === null ? "–" : (d.relative_difference >= 0 ? "+" : "") + (100 * d.relative_difference).toFixed(1) + "%";
          const shown = c.interleaving || d.p_value === null ? rel : `${rel} (${pval(d.p_value)})`;
          return el("td", { "data-metric": k }, shown);
        })));
    out.push(el("table", { class: "compare" },
      el("thead", {}, el("tr", {}, [`relative difference (${c.interleaving ? "per team" : "Welch's test"})`, ...METRICS.map(([, t]) => t)].map((t) => el("th", {}, t)))),
      el("tbody", {}, rows)));
    return out;
  }

  function body(r) {
    const e = r.experiment;
    const ot = r.over_time;
    const arms = Object.entries(ot.arms);
    const step = ot.step_s >= 3600 ? `${ot.step_s / 3600} h` : `${ot.step_s / 60} min`;
    return [
      armsTable(r),
      ...comparison(r),
      el("p", { class: "muted" }, `Over time: cumulative since the start, a point every ${step}; shaded: 95% interval`),
      el("div", { class: "charts" },
        ot.times.length
          ? METRICS.map(([k, t, f]) => lineChart(t, `exp-${e.name}-${k}`, ot.times, arms, k, f))
          : el("p", { class: "muted" }, "nothing shown in this experiment yet")),
    ];
  }

  function title(e) {
    const arms = e.arms.map((a) => `${a.name}=${a.version}`).join(", ");
    const stopped = e.stopped_at ? `, stopped ${when(e.stopped_at)}` : "";
    return [el("b", {}, e.name), ` · ${e.mode} · ${e.surface} · ${arms} · started ${when(e.started_at)}${stopped}`];
  }

  function stoppedBox(e) {
    const box = el("details", { class: "experiment", "data-experiment": e.name, "data-status": e.status },
      el("summary", {}, title(e)));
    const content = el("div", { class: "experiment-body" });
    box.append(content);
    const fill = (r) => content.replaceChildren(...body(r));
    if (opened.has(e.name)) {
      box.open = true;
      if (opened.get(e.name)) fill(opened.get(e.name));
    }
    box.addEventListener("toggle", async () => {
      if (!box.open) return opened.delete(e.name);
      if (opened.get(e.name)) return fill(opened.get(e.name));
      opened.set(e.name, null);
      content.replaceChildren(el("p", { class: "muted" }, "loading…"));
      try {
        const r = await api("GET", `/dashboard/experiments/${encodeURIComponent(e.name)}`);
        opened.set(e.name, r);
        fill(r);
      } catch (err) {
        opened.delete(e.name);
        content.replaceChildren(el("p", { class: "notice" }, err.message));
      }
    });
    return box;
  }

  function render(target, list) {
    const running = list.filter((r) => r.experiment.status === "running");
    const stopped = list.filter((r) => r.experiment.status !== "running");
    target.replaceChildren(
      ...running.map((r) =>
        el("div", { class: "experiment", "data-experiment": r.experiment.name, "data-status": "running" },
          el("h3", {}, title(r.experiment)), ...body(r))),
    );
    if (!running.length) target.append(el("p", { class: "muted" }, "no experiment running (`shopsense experiment start`)"));
    if (stopped.length) target.append(el("h3", {}, "Stopped"), ...stopped.map((r) => stoppedBox(r.experiment)));
  }

  return { render };
})();
