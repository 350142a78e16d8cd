import { call, stream } from "./api.js";
import { h, clear, shorten, age, badge, usageText } from "./dom.js";
import { navigate, onFailure } from "./main.js";

const STATUSES = ["", "pending", "running", "error", "waiting_manual", "waiting_ai_fix", "completed", "aborted"];
const PAGE = 50;

// listView shows a page of jobs, newest first, with filters in the URL's query,
// kept live by the stream of every job's events.
export function listView(root, _m, { batch } = {}) {
  const params = new URLSearchParams(location.search);
  if (batch) params.set("batch_id", batch);
  const filters = ["status", "user_id", "priority", "batch_id", "text"];
  const q = Object.fromEntries(filters.map((k) => [k, params.get(k) || ""]));
  const before = params.get("before") || "";

  const field = (name, label, el) => h("div", { class: "field" }, h("label", { for: "f-" + name }, label), el);
  const input = (name) => h("input", { id: "f-" + name, name, value: q[name], type: "search" });
  const select = (name, opts) =>
    h("select", { id: "f-" + name, name }, opts.map((o) => h("option", { value: o, selected: o === q[name] }, o || "any")));
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter jobs" },
    field("status", "Status", select("status", STATUSES)),
    field("user_id", "User", input("user_id")),
    field("priority", "Priority", select("priority", ["", "high", "normal", "low"])),
    field("batch_id", "Batch", input("batch_id")),
    field("text", "Prompt text", input("text")),
    h("button", { type: "submit" }, "Filter"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const k of filters) {
      const v = form.elements[k].value.trim();
      if (v) next.set(k, v);
    }
    navigate("/" + (next.size ? "?" + next : ""));
  });

  const heading = h("h1", {}, batch ? "Batch " : "Jobs", batch ? h("code", {}, batch) : null);
  const summary = h("p", { class: "muted", id: "batch-summary" });
  const info = h("p", { class: "muted", "aria-live": "polite", id: "list-info" });
  const tbody = h("tbody", { id: "jobs" });
  const table = h(
    "table",
    { class: "jobs" },
    h("thead", {}, h("tr", {}, ["Job", "Status", "Step", "User", "Prompt", "Retries", "Age", "Cost"].map((c) => h("th", { scope: "col" }, c)))),
    tbody,
  );
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  root.append(heading, summary, form, info, h("div", { class: "scroll" }, table), pager);

  const rows = new Map();
  let refetch = null;
  let stopped = false;

  async function load() {
    const query = new URLSearchParams({ limit: String(PAGE) });
    for (const k of filters) if (q[k]) query.set(k, q[k]);
    if (before) query.set("before", before);
    try {
      const reply = await call("GET", "/jobs?" + query);
      if (stopped) return;
      clear(tbody);
      rows.clear();
      for (const j of reply.jobs) tbody.append(row(j));
      info.textContent = reply.jobs.length
        ? `${reply.total} matching job${reply.total === 1 ? "" : "s"}; showing ${reply.jobs.length}${before ? " (older page)" : ""}`
        : "No jobs match.";
      clear(pager);
      if (before) pager.append(h("a", { href: linkWith({ before: "" }), class: "button" }, "« Newest"));
      if (reply.next) pager.append(h("a", { href: linkWith({ before: reply.next }), class: "button", rel: "next", id: "older" }, "Older »"));
    } catch (e) {
      if (!stopped) onFailure(root, e);
      throw e;
    }
  }

  function linkWith(change) {
    const p = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries(change)) v ? p.set(k, v) : p.delete(k);
    return location.pathname + (p.size ? "?" + p : "");
  }

  function row(j) {
    const tr = h("tr", { "data-job": j.job_id });
    rows.set(j.job_id, { tr, job: j });
    fill(tr, j);
    return tr;
  }

  function fill(tr, j) {
    clear(tr).append(
      h("td", {}, h("a", { href: "/job/" + j.job_id, class: "mono", title: j.job_id }, j.job_id.slice(0, 8))),
      h("td", { class: "status" }, badge(j.status)),
      h("td", { class: "step" }, j.step),
      h("td", {}, j.user_id),
      h("td", { class: "prompt", title: j.prompt }, shorten(j.prompt)),
      h("td", { class: "num" }, `${j.retry_count}/${j.max_retries}`),
      h("td", { class: "num", title: j.created_at }, age(j.created_at)),
      h("td", { class: "num" }, usageText(j.usage)),
    );
  }

  function onEvent(ev) {
    const r = rows.get(ev.job_id);
    if (r && ev.revision >= (r.job.revision || 0)) {
      Object.assign(r.job, { status: ev.status, step: ev.step, retry_count: ev.retry_count, max_retries: ev.max_retries, revision: ev.revision });
      fill(r.tr, r.job);
    }
    // A new job, or one that now matches the filters: read the page again, at most
    // once a second. Only the first page changes with new jobs.
    if (!before && !refetch && (!r || q.status)) {
      refetch = setTimeout(() => {
        refetch = null;
        load().catch(() => {});
      }, 1000);
    }
  }

  if (batch) {
    call("GET", "/batches/" + encodeURIComponent(batch))
      .then((b) => {
        summary.textContent = `${b.total} jobs; ` + Object.entries(b.counts || {}).map(([s, n]) => `${s}: ${n}`).join(", ") + (b.done ? " — done" : "");
      })
      .catch((e) => (summary.textContent = String(e.message)));
  }
  let stopStream = () => {};
  load()
    .then(() => {
      if (!stopped) stopStream = stream("/events", onEvent);
    })
    .catch(() => {});
  const ticker = setInterval(() => {
    for (const { tr, job } of rows.values()) tr.children[6].textContent = age(job.created_at);
  }, 10000);
  return () => {
    stopped = true;
    stopStream();
    clearTimeout(refetch);
    clearInterval(ticker);
  };
}
