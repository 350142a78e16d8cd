// h builds an element. Text is only ever set through text nodes and attributes
// through setAttribute, never as HTML: prompts, LaTeX and messages are untrusted.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

// shorten cuts s to n characters (never fewer than 60), with an ellipsis.
export function shorten(s, n = 90) {
  n = Math.max(n, 60);
  s = String(s ?? "").replace(/\s+/g, " ").trim();
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

export function age(t, now = Date.now()) {
  const d = Math.max(0, (now - new Date(t).getTime()) / 1000);
  if (d < 60) return Math.floor(d) + "s";
  if (d < 3600) return Math.floor(d / 60) + "m";
  if (d < 86400) return Math.floor(d / 3600) + "h";
  return Math.floor(d / 86400) + "d";
}

export function time(t) {
  const d = new Date(t);
  return isNaN(d) ? "" : d.toLocaleString(undefined, { hour12: false });
}

export function badge(status) {
  return h("span", { class: "badge st-" + String(status).replace(/[^a-z_]/g, "") }, status);
}

// usageText renders a job's or turn's usage when the field is present:
// {prompt_tokens, completion_tokens, total_tokens, cost_usd} or any subset.
export function usageText(u) {
  if (!u || typeof u !== "object") return "";
  const parts = [];
  const tokens = u.total_tokens ?? ((u.prompt_tokens ?? 0) + (u.completion_tokens ?? 0) || undefined);
  if (tokens !== undefined) parts.push(tokens + " tok");
  const cost = u.cost_usd ?? u.cost;
  if (typeof cost === "number") parts.push("$" + cost.toFixed(4));
  if (u.model) parts.push(u.model);
  return parts.join(" · ");
}
