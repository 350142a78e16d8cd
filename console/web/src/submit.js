import { call } from "./api.js";
import { h } from "./dom.js";
import { describe, navigate, onFailure } from "./main.js";

export function submitView(root) {
  const field = (id, label, el, hint) => h("div", { class: "field wide" }, h("label", { for: id }, label), el, hint ? h("small", {}, hint) : null);
  const f = {
    prompt: h("textarea", { id: "prompt", name: "prompt", rows: 5, required: true, maxlength: 16384 }),
    user: h("input", { id: "user_id", name: "user_id", required: true, maxlength: 128, value: localStorage.getItem("sheetpipe.user") || "" }),
    priority: h("select", { id: "priority", name: "priority" }, ["normal", "high", "low"].map((p) => h("option", { value: p }, p))),
    mode: h("input", { id: "mode", name: "mode" }),
    deps: h("input", { id: "depends_on", name: "depends_on", placeholder: "job ids, comma separated" }),
    retries: h("input", { id: "max_retries", name: "max_retries", type: "number", min: 0, max: 10 }),
  };
  const err = h("p", { class: "alert", role: "alert", id: "submit-error", hidden: true });
  const form = h(
    "form",
    { class: "card", id: "submit-form" },
    h("h2", {}, "One job"),
    field("prompt", "Prompt", f.prompt),
    field("user_id", "User", f.user),
    field("priority", "Priority", f.priority),
    field("mode", "Mode", f.mode, "optional"),
    field("depends_on", "Depends on", f.deps, "optional: ids of jobs whose LaTeX this one builds on"),
    field("max_retries", "Max retries", f.retries, "optional: 0–10; empty takes the service's default"),
    err,
    h("button", { type: "submit", id: "submit" }, "Submit"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.hidden = true;
    const req = { user_id: f.user.value.trim(), prompt: f.prompt.value, priority: f.priority.value };
    if (f.mode.value.trim()) req.mode = f.mode.value.trim();
    const deps = f.deps.value.split(/[\s,]+/).filter(Boolean);
    if (deps.length) req.depends_on = deps;
    if (f.retries.value !== "") req.max_retries = Number(f.retries.value);
    try {
      localStorage.setItem("sheetpipe.user", req.user_id);
      const reply = await call("POST", "/jobs", req);
      navigate("/job/" + reply.job_id);
    } catch (e2) {
      if (e2.status === 401) return onFailure(root, e2);
      err.textContent = describe(e2);
      err.hidden = false;
    }
  });

  const lines = h("textarea", { id: "batch-lines", name: "lines", rows: 6, placeholder: '{"user_id":"ana","prompt":"fractions for grade 5"}' });
  const file = h("input", { id: "batch-file", type: "file", accept: ".jsonl,.ndjson,.json,.txt,application/x-ndjson" });
  const batchID = h("input", { id: "batch-id", name: "batch_id", placeholder: "optional: a UUID" });
  const berr = h("p", { class: "alert", role: "alert", id: "batch-error", hidden: true });
  file.addEventListener("change", async () => {
    if (file.files[0]) lines.value = await file.files[0].text();
  });
  const batch = h(
    "form",
    { class: "card", id: "batch-form" },
    h("h2", {}, "A batch"),
    h("p", { class: "muted" }, "One JSON job request per line, as POST /batches takes as application/x-ndjson."),
    field("batch-file", "File", file),
    field("batch-lines", "JSON lines", lines),
    field("batch-id", "Batch id", batchID),
    berr,
    h("button", { type: "submit", id: "batch-submit" }, "Submit batch"),
  );
  batch.addEventListener("submit", async (e) => {
    e.preventDefault();
    berr.hidden = true;
    const q = batchID.value.trim() ? "?batch_id=" + encodeURIComponent(batchID.value.trim()) : "";
    try {
      const reply = await call("POST", "/batches" + q, lines.value, "application/x-ndjson");
      navigate("/batch/" + encodeURIComponent(reply.batch_id));
    } catch (e2) {
      if (e2.status === 401) return onFailure(root, e2);
      berr.textContent = describe(e2);
      berr.hidden = false;
    }
  });
  root.append(h("h1", {}, "Submit"), h("div", { class: "grid" }, form, batch));
  f.prompt.focus();
}
