// The dashboard: counts, model versions, the latest offline evaluation as bar charts, and online
// CTR / conversion per model version (from impressions joined to events by request_id), and the
// experiments (experiments.js).
// It needs an operator's API key (read scope): the page embeds none; the operator enters one, kept in
// this tab's sessionStorage (gone when the tab closes) and dropped when the server refuses it.
"use strict";
(() => {
  const { api, el, setKey } = Shop;
  const KEY = "shopsense-operator-key";
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const fmt = (v) => (Number.isInteger(v) || Math.abs(v) >= 100 ? Math.round(v).toLocaleString() : Number(v).toPrecision(3));

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  // Horizontal bar chart of [label, value] pairs, drawn as inline SVG (no library).
  function barChart(title, pairs, id) {
    const box = el("div", { class: "chart", "data-chart": id || title }, el("h4", {}, title));
    const max = Math.max(1e-12, ...pairs.map(([, v]) => v));
    const rowH = 22, labelW = 170, w = 460;
    const s = svg("svg", { width: "100%", viewBox: `0 0 ${w} ${pairs.length * rowH + 4}`, role: "img", "aria-label": title });
    pairs.forEach(([label, v], i) => {
      const y = i * rowH + 2;
      const text = String(label);
      s.append(svg("text", { x: 0, y: y + 15, "font-size": 11, fill: "#1d2330" }, text.length > 27 ? text.slice(0, 26) + "…" : text));
      const bw = Math.max(1, ((w - labelW - 60) * v) / max);
      s.append(svg("rect", { x: labelW, y, width: bw, height: rowH - 6, fill: "#0b6bcb", rx: 3, class: "bar" }));
      s.append(svg("text", { x: labelW + bw + 4, y: y + 13, "font-size": 11, fill: "#687083" }, fmt(v)));
    });
    box.append(s);
    return box;
  }

  function render(d) {
    const s = d.stats;
    $("tiles").replaceChildren(
      ...[
        ["products", s.products], ["users", s.users], ["events", s.events], ["impressions", s.impressions],
        ["searches that found nothing as typed", d.search.no_match], ["searches with no results at all", d.search.zero_results],
      ].map(([k, v]) =>
        el("div", { class: "tile", "data-stat": k }, el("b", {}, Number(v).toLocaleString()), k),
      ),
    );
    $("events-chart").replaceChildren(barChart("Events by type", Object.entries(s.events_by_type), "events"));
    $("versions").tBodies[0].replaceChildren(
      ...d.models.versions
        .slice()
        .reverse()
        .map((v) =>
          el("tr", { "data-version": v.version },
            el("td", {}, v.version), el("td", {}, v.status), el("td", {}, new Date(v.created_at * 1000).toLocaleString()),
            el("td", {}, v.active ? "yes" : ""), el("td", {}, v.served ? "serving" : "")),
        ),
    );
    if (!d.models.versions.length) $("versions").tBodies[0].append(el("tr", {}, el("td", { colspan: 5 }, "no model trained yet")));
    const off = $("offline");
    off.replaceChildren();
    if (d.offline) {
      $("offline-meta").textContent = `from ${d.offline.name}, written ${new Date(d.offline.written_at * 1000).toLocaleString()}`;
      for (const c of d.offline.charts)
        off.append(barChart(`${c.section} · ${c.dataset} · ${c.metric}`, c.bars, `offline-${c.section}-${c.dataset}-${c.metric}`));
    } else {
      $("offline-meta").textContent =
        "no offline evaluation yet: run `shopsense evaluate recommend` (the shop's own log, kept in the knowledge base), or `benchmarks/run.py --reports <home>/reports`";
    }
    const pct = (v) => (100 * v).toFixed(1) + "%";
    const byVersion = d.online["model_version+surface"] || [];
    $("online").tBodies[0].replaceChildren(
      ...byVersion.map((r) =>
        el("tr", { "data-version": r.model_version, "data-surface": r.surface },
          el("td", {}, r.model_version), el("td", {}, r.surface), el("td", {}, r.requests), el("td", {}, r.impressions),
          el("td", {}, r.clicks), el("td", { class: "ctr" }, pct(r.ctr)), el("td", {}, r.add_to_carts),
          el("td", {}, r.purchases), el("td", {}, pct(r.conversion))),
      ),
    );
    if (!byVersion.length) $("online").tBodies[0].append(el("tr", {}, el("td", { colspan: 9 }, "nothing shown yet")));
    const short = (v) => (v.length > 12 ? "…" + v.slice(-6) : v);
    const label = (r) => `${r.surface} · ${short(r.model_version)}`;
    $("online-chart").replaceChildren(
      ...(byVersion.length
        ? [barChart("CTR", byVersion.map((r) => [label(r), r.ctr]), "ctr"),
           barChart("Add-to-cart rate", byVersion.map((r) => [label(r), r.add_to_cart_rate]), "cart"),
           barChart("Conversion (purchases per impression)", byVersion.map((r) => [label(r), r.conversion]), "conversion")]
        : []),
    );
    const bySource = d.online.source || [];
    $("online-source").tBodies[0].replaceChildren(
      ...bySource.map((r) =>
        el("tr", { "data-source": r.source },
          el("td", {}, r.source), el("td", {}, r.impressions), el("td", {}, r.clicks), el("td", {}, pct(r.ctr)),
          el("td", {}, r.purchases), el("td", {}, pct(r.conversion))),
      ),
    );
    Experiments.render($("experiments"), d.experiments || []);
    document.body.dataset.loaded = "1";
  }

  function askForKey(message) {
    sessionStorage.removeItem(KEY);
    setKey("");
    $("login").hidden = false;
    $("error").hidden = !message;
    $("error").textContent = message || "";
    $("key").focus();
  }

  async function refresh() {
    if (!sessionStorage.getItem(KEY)) return;
    try {
      render(await api("GET", "/dashboard/data"));
      $("error").hidden = true;
    } catch (e) {
      if (e.status === 401 || e.status === 403) return askForKey(e.message);
      $("error").hidden = false;
      $("error").textContent = e.message;
    }
  }

  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const k = $("key").value.trim();
    if (!k) return;
    sessionStorage.setItem(KEY, k);
    setKey(k);
    $("key").value = "";
    $("login").hidden = true;
    refresh();
  });
  if (sessionStorage.getItem(KEY)) {
    setKey(sessionStorage.getItem(KEY));
    refresh();
  } else {
    askForKey();
  }
  setInterval(refresh, 10000);
})();
