// The storefront: search with autocomplete and facets, "recommended for you", product pages with
// similar products. Clicks, views and add-to-cart are posted as events quoting the request_id of
// the list they came from, so the next recommendations visibly adapt.
"use strict";
(() => {
  const { api, el, qs, shopper } = Shop;
  const $ = (id) => document.getElementById(id);
  const state = { query: "", filters: {}, cart: 0 };
  let timer = null;
  let suggestToken = 0;
  const FILTERABLE = ["category", "brand", "price", "available"];
  // a selected facet value as /search parameters
  function params(filters) {
    const out = {};
    for (const [name, value] of Object.entries(filters)) {
      if (name === "price") {
        const [lo, hi] = value.replace("+", "").split("-");
        out.min_price = lo;
        if (hi) out.max_price = hi;
      } else if (name === "available") {
        if (value === "true") out.available = true;
      } else out[name] = value;
    }
    return out;
  }
  $("visitor").textContent = shopper;

  function notice(msg) {
    $("notice").hidden = !msg;
    $("notice").textContent = msg || "";
  }
  function toast(msg) {
    const t = $("toast");
    t.textContent = msg;
    t.classList.add("show");
    setTimeout(() => t.classList.remove("show"), 1400);
  }
  // no user_id: with the page key the server records the event for this browser's shopper (cookie)
  async function postEvent(event_type, item_id, request_id) {
    const ev = { event_type, item_id };
    if (request_id) ev.request_id = request_id;
    await api("POST", "/events", ev);
  }

  function card(hit, requestId) {
    const p = hit.product || { title: hit.item_id };
    return el(
      "div",
      { class: "card", "data-item": hit.item_id },
      el("span", { class: "title", onclick: () => openProduct(hit.item_id, requestId) }, p.title || hit.item_id),
      el("span", { class: "meta" }, [p.brand, p.category].filter(Boolean).join(" · ")),
      p.price != null ? el("span", { class: "price" }, "$" + Number(p.price).toFixed(2)) : "",
      hit.explanation ? el("span", { class: "why" }, hit.explanation) : "",
      el("button", { class: "secondary add", onclick: () => addToCart(hit.item_id, requestId) }, "Add to cart"),
    );
  }
  function fill(grid, resp) {
    grid.replaceChildren(...resp.items.map((h) => card(h, resp.request_id)));
    grid.dataset.requestId = resp.request_id;
    grid.dataset.modelVersion = resp.model_version || "";
    if (!resp.items.length) grid.append(el("p", { class: "muted" }, "Nothing here yet."));
  }

  async function loadRecs() {
    try {
      fill($("recs"), await api("GET", "/recommend?" + qs({ k: 8, details: true })));
    } catch (e) {
      $("recs").replaceChildren(el("p", { class: "muted" }, e.message));
      if (e.status === 503) notice("No trained model yet: run `shopsense train` (or POST /train), then reload.");
    }
  }

  async function search(q) {
    state.query = q;
    clearTimeout(timer);
    suggestToken += 1; // a suggestion list still in flight must not reopen over the results
    $("suggest").hidden = true;
    if (!q) return;
    try {
      const r = await api("GET", "/search?" + qs({ q, k: 24, details: true, ...params(state.filters) }));
      $("results-section").hidden = false;
      $("product-view").hidden = true;
      $("results-title").textContent = `Results for “${q}”` + (r.did_you_mean ? ` (did you mean “${r.did_you_mean}”?)` : "");
      fill($("results"), r);
      facets(r.facets || {});
      loadRecs(); // the search is the shopper's latest signal
    } catch (e) {
      notice(e.message);
    }
  }

  function facets(f) {
    const box = $("facets");
    box.replaceChildren();
    for (const [name, counts] of Object.entries(f)) {
      if (!counts || !Object.keys(counts).length) continue;
      box.append(el("h3", {}, name));
      for (const [value, n] of Object.entries(counts).slice(0, 12)) {
        const input = el("input", { type: "checkbox", "data-facet": name, value });
        if (state.filters[name] === value) input.checked = true;
        if (!FILTERABLE.includes(name) || (name === "available" && value !== "true")) input.disabled = true;
        input.addEventListener("change", () => {
          if (input.checked) state.filters[name] = value;
          else delete state.filters[name];
          search(state.query);
        });
        box.append(el("label", {}, input, ` ${value} (${n})`));
      }
    }
  }

  async function openProduct(itemId, requestId) {
    try {
      if (requestId) await postEvent("click", itemId, requestId);
      await postEvent("view", itemId);
      const p = await api("GET", "/products/" + encodeURIComponent(itemId));
      const view = $("product-view");
      view.hidden = false;
      view.replaceChildren(
        el(
          "div",
          { class: "product", "data-item": itemId },
          el("h2", { id: "product-title" }, p.title),
          el("p", { class: "muted" }, [p.brand, p.category].filter(Boolean).join(" · ")),
          p.price != null ? el("p", { class: "price" }, "$" + Number(p.price).toFixed(2)) : "",
          p.description ? el("p", {}, p.description) : "",
          el("button", { id: "product-add", onclick: () => addToCart(itemId, requestId) }, "Add to cart"),
        ),
        el("h2", {}, "Similar products"),
        el("div", { id: "similar", class: "grid" }),
      );
      try {
        fill($("similar"), await api("GET", `/similar/${encodeURIComponent(itemId)}?` + qs({ k: 6, details: true })));
      } catch (e) {
        $("similar").replaceChildren(el("p", { class: "muted" }, e.message));
      }
      window.scrollTo(0, 0);
      loadRecs();
    } catch (e) {
      notice(e.message);
    }
  }

  async function addToCart(itemId, requestId) {
    try {
      await postEvent("add_to_cart", itemId, requestId);
      state.cart += 1;
      $("cart-count").textContent = state.cart;
      toast("Added to cart");
      loadRecs();
    } catch (e) {
      notice(e.message);
    }
  }

  // autocomplete: debounced, keyboard friendly
  let active = -1;
  const input = $("q");
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const q = input.value.trim();
    if (!q) return ($("suggest").hidden = true);
    const token = ++suggestToken;
    timer = setTimeout(async () => {
      try {
        const r = await api("GET", "/autocomplete?" + qs({ q, k: 8 }));
        if (input.value.trim() !== q || token !== suggestToken) return;
        active = -1;
        $("suggest").replaceChildren(
          ...r.suggestions.map((s) =>
            el("li", { onmousedown: (ev) => { ev.preventDefault(); input.value = s; search(s); } }, s),
          ),
        );
        $("suggest").hidden = !r.suggestions.length;
      } catch (e) {
        $("suggest").hidden = true;
      }
    }, 120);
  });
  input.addEventListener("keydown", (ev) => {
    const items = [...$("suggest").children];
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      if (!items.length) return;
      active = (active + (ev.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
      items.forEach((li, i) => li.classList.toggle("active", i === active));
      ev.preventDefault();
    } else if (ev.key === "Enter") {
      if (active >= 0 && items[active] && !$("suggest").hidden) input.value = items[active].textContent;
      state.filters = {};
      search(input.value.trim());
    } else if (ev.key === "Escape") {
      $("suggest").hidden = true;
    }
  });
  input.addEventListener("blur", () => setTimeout(() => ($("suggest").hidden = true), 150));
  $("home-link").addEventListener("click", (ev) => {
    ev.preventDefault();
    $("product-view").hidden = true;
    $("results-section").hidden = true;
    $("facets").replaceChildren();
    input.value = "";
    loadRecs();
  });
  loadRecs();
})();
