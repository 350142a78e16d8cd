import { call, stream } from "./api.js";
import { h, clear, badge, shorten, age } from "./dom.js";
import { onFailure } from "./main.js";

// overviewView shows GET /stats, read again every few seconds and shortly after
// any job's event.
export function overviewView(root) {
  const body = h("div", { id: "overview" });
  const stamp = h("p", { class: "muted", "aria-live": "off" });
  root.append(h("h1", {}, "Pipeline overview"), stamp, body);
  let stopped = false;
  let pending = null;

  const table = (caption, cols, rows) =>
    h("table", { class: "stats" }, h("caption", {}, caption), h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, c)))), h("tbody", {}, rows));

  async function load() {
    let o;
    try {
      o = await call("GET", "/stats");
    } catch (e) {
      if (!stopped) {
        clear(body);
        onFailure(body, e);
      }
      return false;
    }
    if (stopped) return false;
    stamp.textContent = `${o.jobs} jobs in the bucket; as of ${new Date(o.time).toLocaleTimeString(undefined, { hour12: false })}`;
    const statuses = ["pending", "running", "error", "waiting_ai_fix", "waiting_manual", "completed", "aborted"];
    clear(body).append(
      h(
        "div",
        { class: "grid3" },
        table("Jobs by status", ["Status", "Jobs"], statuses.map((s) => h("tr", { "data-status": s }, h("td", {}, h("a", { href: "/?status=" + s }, badge(s))), h("td", { class: "num" }, o.statuses[s] || 0)))),
        table("Tickets by stage and priority", ["Stage", "Priority", "Waiting", "In flight"], o.queues.map((q) => h("tr", { "data-queue": q.consumer }, h("td", {}, q.stage), h("td", {}, q.priority), h("td", { class: "num" }, q.error ? "?" : q.waiting), h("td", { class: "num" }, q.error ? "?" : q.in_flight)))),
        table("Jobs running", ["Step", "Priority", "Running"], o.running.length ? o.running.map((r) => h("tr", {}, h("td", {}, r.step), h("td", {}, r.priority), h("td", { class: "num" }, r.running))) : [h("tr", {}, h("td", { colspan: 3, class: "muted" }, "none"))]),
      ),
      table(
        "Recent failures",
        ["Job", "Status", "Step", "User", "Message", "Updated"],
        o.failures.length
          ? o.failures.map((j) => h("tr", {}, h("td", {}, h("a", { href: "/job/" + j.job_id, class: "mono" }, j.job_id.slice(0, 8))), h("td", {}, badge(j.status)), h("td", {}, j.step), h("td", {}, j.user_id), h("td", {}, shorten(j.message, 80)), h("td", { class: "num" }, age(j.updated_at))))
          : [h("tr", {}, h("td", { colspan: 6, class: "muted" }, "none"))],
      ),
    );
    return true;
  }

  let stopStream = () => {};
  load().then((ok) => {
    if (ok && !stopped)
      stopStream = stream("/events", () => {
        if (!pending) pending = setTimeout(() => ((pending = null), load()), 1000);
      });
  });
  const poll = setInterval(load, 5000);
  return () => {
    stopped = true;
    stopStream();
    clearInterval(poll);
    clearTimeout(pending);
  };
}
