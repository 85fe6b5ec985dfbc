// Shared by the storefront and the dashboard: the API key, a small fetch wrapper, DOM helpers.
// The storefront's key is its public page key (in a <meta>); the shopper it acts for is decided by
// the server from an http-only session cookie, so no script here knows or sends a user id. The
// dashboard has no key in its page: the operator enters one (Shop.setKey).
"use strict";
const Shop = (() => {
  const meta = document.querySelector('meta[name="shopsense-key"]');
  let key = meta ? meta.content : "";
  const setKey = (k) => { key = k || ""; };
  const shopperMeta = document.querySelector('meta[name="shopsense-shopper"]');
  const shopper = shopperMeta ? shopperMeta.content : "";
  async function api(method, path, body) {
    // same-origin fetches send the shopper cookie; the key header keeps other sites out (CORS)
    const opts = { method, headers: { "X-API-Key": key }, credentials: "same-origin" };
    if (body instanceof Blob) {  // a file as it is (a picture for POST /search/image)
      opts.headers["Content-Type"] = body.type || "application/octet-stream";
      opts.body = body;
    } else if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(path, opts);
    const data = await r.json().catch(() => ({}));
    if (!r.ok) {
      const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
      const err = new Error(detail || r.statusText);
      err.status = r.status;
      throw err;
    }
    return data;
  }
  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null) e.setAttribute(k, v);
    }
    for (const c of children.flat()) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
    return e;
  }
  const qs = (params) =>
    new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "")).toString();
  return { api, el, qs, setKey, shopper };
})();
