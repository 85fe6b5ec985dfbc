// Shared by the storefront and the dashboard: the page key, a small fetch wrapper, the visitor id.
"use strict";
const Shop = (() => {
  const key = document.querySelector('meta[name="shopsense-key"]').content;
  const visitorKey = "shopsense-visitor";
  let visitor = localStorage.getItem(visitorKey);
  if (!visitor) {
    visitor = "visitor-" + Math.random().toString(36).slice(2, 10);
    localStorage.setItem(visitorKey, visitor);
  }
  async function api(method, path, body) {
    const opts = { method, headers: { "X-API-Key": key } };
    if (body !== undefined) {
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
  return { api, el, qs, visitor };
})();
