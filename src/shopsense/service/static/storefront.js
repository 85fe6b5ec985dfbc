// The storefront: search with autocomplete and facets; a list for each place of the shop (home: for
// you, continue shopping, buy again; product page: similar, bought together; cart: complete the
// cart), each a surface of GET /recommend. Clicks, views and cart changes are posted as events, a
// click or add-to-cart quoting the request_id of the list it came from, so the lists visibly adapt.
"use strict";
(() => {
  const { api, el, qs, shopper } = Shop;
  const $ = (id) => document.getElementById(id);
  const state = { query: "", filters: {} };
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

  // The cart is what this browser added and did not remove (kept per shopper in localStorage); the
  // server derives the same cart from the events posted here, which is what "complete the cart" reads.
  const cart = {
    key: "shopsense-cart:" + shopper,
    ids() {
      try {
        const ids = JSON.parse(localStorage.getItem(this.key) || "[]");
        return Array.isArray(ids) ? ids.filter((i) => typeof i === "string") : [];
      } catch (e) {
        return [];
      }
    },
    save(ids) {
      localStorage.setItem(this.key, JSON.stringify(ids));
      $("cart-count").textContent = ids.length;
    },
  };

  // a product's picture: an http(s) image_url as it is, a relative one from the media folder (/media/);
  // other schemes and absolute local paths are not shown (the server does not serve them)
  function pictureUrl(url) {
    if (!url || typeof url !== "string") return null;
    if (/^https?:\/\//i.test(url)) return url;
    if (/^[a-z][a-z0-9+.-]*:/i.test(url) || url.startsWith("/") || url.split("/").includes("..")) return null;
    return "/media/" + url.split("/").map(encodeURIComponent).join("/");
  }
  function picture(p, onclick) {
    const src = pictureUrl(p.image_url);
    return src ? el("img", { class: "pic", src, alt: p.title || "", loading: "lazy", onclick }) : "";
  }

  function card(hit, requestId) {
    const p = hit.product || { title: hit.item_id };
    return el(
      "div",
      { class: "card", "data-item": hit.item_id },
      picture(p, () => openProduct(hit.item_id, requestId)),
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

  // One page's list: GET /recommend?surface=… into its grid. With `optional`, the list's section is
  // hidden when it is empty (a "buy again" row without items says nothing). `current` tells whether
  // the page that asked is still the one shown (a late answer must not fill a newer page).
  async function loadList(id, params, { optional = false, current = () => true } = {}) {
    const grid = $(id);
    const section = grid.closest("section");
    try {
      const r = await api("GET", "/recommend?" + qs({ k: 8, details: true, ...params }));
      if (!current()) return;
      fill(grid, r);
      if (optional) section.hidden = !r.items.length;
    } catch (e) {
      if (!current()) return;
      if (optional) section.hidden = true;
      grid.replaceChildren(el("p", { class: "muted" }, e.message));
      if (e.status === 503) notice("No trained model yet: run `shopsense train` (or POST /train), then reload.");
    }
  }
  const loadRecs = () => loadList("recs", { surface: "for_you" });
  function loadHome() {
    loadList("continue", { surface: "continue_shopping" }, { optional: true });
    loadList("buy-again", { surface: "buy_again" }, { optional: true });
    loadRecs();
  }

  // Pages: home (#/), a product (#/product/ID), the cart (#/cart), search results (#/search/QUERY).
  const VIEWS = {
    home: ["home-view", "recs-section"],
    search: ["results-section", "recs-section"],
    product: ["product-view", "recs-section"],
    cart: ["cart-view"],
  };
  let view = "home";
  let shown = 0; // bumped on every page shown: answers for an earlier page are dropped
  function show(name) {
    view = name;
    shown += 1;
    for (const id of new Set(Object.values(VIEWS).flat())) $(id).hidden = !VIEWS[name].includes(id);
    if (name !== "search") $("facets").replaceChildren();
    window.scrollTo(0, 0);
    return shown;
  }
  function go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash; // the hashchange routes
  }
  function route() {
    const [, page, ...rest] = location.hash.replace(/^#/, "").split("/");
    let arg = rest.join("/");
    try {
      arg = decodeURIComponent(arg);
    } catch (e) {} // a hand-typed "%" that is not an escape: the text as typed
    notice("");
    if (page === "product" && arg) showProduct(arg);
    else if (page === "cart") showCart();
    else if (page === "search" && arg) {
      input.value = arg;
      search(arg);
    } else {
      show("home");
      input.value = "";
      loadHome();
    }
  }

  async function search(q) {
    state.query = q;
    clearTimeout(timer);
    suggestToken += 1; // a suggestion list still in flight must not reopen over the results
    $("suggest").hidden = true;
    if (!q) return;
    if (view !== "search") show("search");
    try {
      const r = await api("GET", "/search?" + qs({ q, k: 24, details: true, ...params(state.filters) }));
      $("results-title").textContent = `Results for “${q}”` + (r.did_you_mean ? ` (did you mean “${r.did_you_mean}”?)` : "");
      fill($("results"), r);
      facets(r.facets || {});
      loadRecs(); // the search is the shopper's latest signal
    } catch (e) {
      notice(e.message);
    }
  }

  // search by picture: the products that look like an uploaded image (a version trained with images)
  async function searchByPicture(file) {
    if (!file) return;
    if (view !== "search") show("search");
    try {
      const r = await api("POST", "/search/image?" + qs({ k: 24, details: true }), file);
      $("results-title").textContent = "Products that look like your picture";
      fill($("results"), r);
      facets({});
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

  // a click on a list's item: the click quotes the list's request_id, then the product page opens
  async function openProduct(itemId, requestId) {
    try {
      if (requestId) await postEvent("click", itemId, requestId);
    } catch (e) {
      notice(e.message);
    }
    go("#/product/" + encodeURIComponent(itemId));
  }

  async function showProduct(itemId) {
    const token = show("product");
    const current = () => token === shown;
    $("product").replaceChildren();
    $("similar").replaceChildren();
    $("together").replaceChildren();
    try {
      await postEvent("view", itemId);
      const p = await api("GET", "/products/" + encodeURIComponent(itemId));
      if (!current()) return;
      $("product").replaceChildren(
        el(
          "div",
          { class: "product", "data-item": itemId },
          picture(p),
          el("h2", { id: "product-title" }, p.title || itemId),
          el("p", { class: "muted" }, [p.brand, p.category].filter(Boolean).join(" · ")),
          p.price != null ? el("p", { class: "price" }, "$" + Number(p.price).toFixed(2)) : "",
          p.description ? el("p", {}, p.description) : "",
          el("button", { id: "product-add", onclick: () => addToCart(itemId) }, "Add to cart"),
        ),
      );
      loadList("similar", { surface: "similar", item_id: itemId, k: 6 }, { current });
      loadList("together", { surface: "bought_together", item_id: itemId, k: 6 }, { optional: true, current });
      loadRecs();
    } catch (e) {
      notice(e.message);
    }
  }

  async function showCart() {
    const token = show("cart");
    const current = () => token === shown;
    const ids = cart.ids();
    $("cart-count").textContent = ids.length;
    $("complete-section").hidden = true;
    if (!ids.length) return $("cart-items").replaceChildren(el("li", { class: "muted" }, "Your cart is empty."));
    // the catalog's current record of each item (one that left the catalog shows its id)
    const products = await Promise.all(
      ids.map((id) => api("GET", "/products/" + encodeURIComponent(id)).catch(() => ({ title: id }))),
    );
    if (!current()) return;
    $("cart-items").replaceChildren(
      ...ids.map((id, n) =>
        el(
          "li",
          { "data-item": id },
          el("span", { class: "title", onclick: () => openProduct(id) }, products[n].title || id),
          products[n].price != null ? el("span", { class: "price" }, "$" + Number(products[n].price).toFixed(2)) : "",
          el("button", { class: "secondary remove", onclick: () => removeFromCart(id) }, "Remove"),
        ),
      ),
    );
    loadList("complete", { surface: "complete_the_cart" }, { optional: true, current });
  }

  // the lists of the page shown, after the shopper did something they depend on
  function refresh() {
    if (view === "home") loadHome();
    else if (view === "cart") showCart();
    else loadRecs();
  }

  async function addToCart(itemId, requestId) {
    try {
      await postEvent("add_to_cart", itemId, requestId);
      const ids = cart.ids();
      if (!ids.includes(itemId)) cart.save([...ids, itemId]);
      toast("Added to cart");
      refresh();
    } catch (e) {
      notice(e.message);
    }
  }

  async function removeFromCart(itemId) {
    try {
      await postEvent("remove_from_cart", itemId);
      cart.save(cart.ids().filter((i) => i !== itemId));
      refresh();
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
            el("li", { onmousedown: (ev) => { ev.preventDefault(); input.value = s; go("#/search/" + encodeURIComponent(s)); } }, s),
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
      const q = input.value.trim();
      if (q) go("#/search/" + encodeURIComponent(q));
    } else if (ev.key === "Escape") {
      $("suggest").hidden = true;
    }
  });
  input.addEventListener("blur", () => setTimeout(() => ($("suggest").hidden = true), 150));
  $("home-link").addEventListener("click", (ev) => {
    ev.preventDefault();
    go("#/");
  });
  $("picture").addEventListener("change", (ev) => {
    searchByPicture(ev.target.files[0]);
    ev.target.value = ""; // the same picture again is a new search
  });
  window.addEventListener("hashchange", route);
  $("cart-count").textContent = cart.ids().length;
  route();
})();
