import { call, blob, stream } from "./api.js";
import { h, clear, time, badge, usageText } from "./dom.js";
import { describe, onFailure } from "./main.js";
import { latexEditor } from "./editor.js";
import { renderPDF } from "./pdf.js";

// confirmAction asks in a modal dialog. Keyboard: the focus starts on the
// confirm button (Enter confirms), Escape cancels, Tab and Shift+Tab cycle
// through the dialog's buttons only, and the focus returns to the control that
// opened it.
function confirmAction(text, ok) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const dlg = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-text" },
      h(
        "form",
        { method: "dialog" },
        h("p", { id: "confirm-text" }, text),
        h("div", { class: "actions" }, h("button", { value: "cancel", id: "confirm-cancel" }, "Cancel"), h("button", { value: "ok", class: "danger", id: "confirm-ok", autofocus: true }, ok)),
      ),
    );
    dlg.addEventListener("keydown", (e) => {
      if (e.key !== "Tab") return;
      const stops = [...dlg.querySelectorAll("button, input, [href], [tabindex]:not([tabindex='-1'])")].filter((el) => !el.disabled);
      const i = stops.indexOf(document.activeElement);
      const next = e.shiftKey ? (i <= 0 ? stops.length - 1 : i - 1) : (i + 1) % stops.length;
      e.preventDefault();
      stops[next].focus();
    });
    dlg.addEventListener("close", () => {
      resolve(dlg.returnValue === "ok");
      dlg.remove();
      if (opener && opener.isConnected && opener.focus) opener.focus();
    });
    document.body.append(dlg);
    dlg.showModal();
  });
}

export function jobView(root, m) {
  const id = m[1].toLowerCase();
  let job = null;
  let dirty = false;
  let pdfShown = "";
  let lastRev = 0;
  let stopped = false;
  let stopStream = () => {};

  const alert = h("p", { class: "alert", role: "alert", id: "action-error", hidden: true });
  const note = h("p", { class: "note", role: "status", id: "action-note" });
  const head = h("div", { class: "jobhead", id: "jobhead" });
  const timeline = h("tbody", { id: "timeline" });
  const promptEl = h("pre", { class: "text", id: "prompt" });
  const designEl = h("pre", { class: "text", id: "design" });
  const convEl = h("div", { id: "conversation" });
  const pdfEl = h("div", { class: "pdf", id: "pdf", "aria-live": "polite" }, h("p", { class: "muted" }, "No PDF yet."));
  const errBox = h("div", { class: "errbox", id: "compile-error", hidden: true });
  const edHost = h("div", { class: "editor", id: "editor" });
  const refineInput = h("input", { id: "refine-text", name: "instruction", placeholder: "e.g. add three harder questions", required: true });

  const btn = (label, idAttr, fn, cls) => h("button", { type: "button", id: idAttr, class: cls, onclick: fn }, label);
  const actions = h(
    "div",
    { class: "actions" },
    btn("Retry", "retry", () => act("retry", "POST", `/jobs/${id}/retry`)),
    btn("Abort", "abort", async () => (await confirmAction("Abort this job? An aborted job cannot be resumed.", "Abort job")) && act("abort", "POST", `/jobs/${id}/abort`), "danger"),
    h("a", { href: `/jobs/${id}/pdf`, download: id + ".pdf", id: "download", class: "button", onclick: (e) => (e.preventDefault(), download()) }, "Download PDF"),
  );
  const refineForm = h("form", { class: "inline", id: "refine" }, h("label", { for: "refine-text" }, "Refine"), refineInput, h("button", { type: "submit" }, "Refine"));
  refineForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (await confirmAction("Refine regenerates the design and the LaTeX from your instruction. Continue?", "Refine"))
      act("refine", "POST", `/jobs/${id}/refine`, { instruction: refineInput.value });
  });

  root.append(
    h("h1", {}, "Job ", h("code", {}, id)),
    head,
    actions,
    refineForm,
    alert,
    note,
    h(
      "div",
      { class: "grid" },
      h(
        "div",
        {},
        h("section", { "aria-labelledby": "s-tl" }, h("h2", { id: "s-tl" }, "Timeline"), h("div", { class: "scroll" }, h("table", { class: "timeline" }, h("thead", {}, h("tr", {}, ["Time", "Status", "Step", "Message", "Error"].map((c) => h("th", { scope: "col" }, c)))), timeline))),
        h("section", { "aria-labelledby": "s-pr" }, h("h2", { id: "s-pr" }, "Prompt"), promptEl),
        h("section", { "aria-labelledby": "s-de" }, h("h2", { id: "s-de" }, "Design"), designEl),
        h("section", { "aria-labelledby": "s-cv" }, h("h2", { id: "s-cv" }, "Conversation"), convEl),
      ),
      h(
        "div",
        {},
        h("section", { "aria-labelledby": "s-pdf" }, h("h2", { id: "s-pdf" }, "PDF"), pdfEl),
        h(
          "section",
          { "aria-labelledby": "s-tex" },
          h("h2", { id: "s-tex" }, "LaTeX"),
          h("div", { class: "texgrid" }, edHost, errBox),
          h("div", { class: "actions" }, btn("Recompile with this LaTeX", "recompile", recompile), btn("Revert to the job's LaTeX", "revert", () => { dirty = false; showLatex(true); })),
        ),
      ),
    ),
  );
  const editor = latexEditor(edHost, { onChange: () => (dirty = true) });

  function showError(err) {
    alert.textContent = describe(err);
    alert.hidden = false;
    note.textContent = "";
  }

  async function act(name, method, path, body) {
    alert.hidden = true;
    note.textContent = "";
    try {
      await call(method, path, body);
      note.textContent = `${name}: accepted.`;
      follow();
      await load();
    } catch (e) {
      if (e.status === 401) return onFailure(root, e);
      showError(e);
    }
  }

  async function recompile() {
    if (!(await confirmAction("Replace the job's LaTeX with the editor's text and compile it?", "Recompile"))) return;
    const text = editor.text();
    dirty = false;
    await act("recompile", "POST", `/jobs/${id}/latex`, { latex: text });
  }

  // download fetches the PDF with the token (a plain link cannot send it) and
  // saves it as <job>.pdf.
  async function download() {
    alert.hidden = true;
    note.textContent = "";
    try {
      const b = await blob(`/jobs/${id}/pdf`);
      const url = URL.createObjectURL(b);
      const a = h("a", { href: url, download: id + ".pdf" });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) {
      showError(e);
    }
  }

  function showLatex(force) {
    if (!job || (dirty && !force)) return;
    const line = job.error_log && job.error_log.line;
    if (editor.text() !== (job.latex || "")) editor.set(job.latex || "", line);
    else editor.mark(line);
  }

  function render() {
    const j = job;
    const kv = (k, v) => (v === undefined || v === null || v === "" ? null : h("div", {}, h("dt", {}, k), h("dd", {}, v)));
    clear(head).append(
      h(
        "dl",
        { class: "facts" },
        kv("Status", badge(j.status)),
        kv("Step", j.current_step),
        kv("Message", j.message),
        kv("User", j.user_id),
        kv("Priority", j.priority || "normal"),
        kv("Batch", j.batch_id ? h("a", { href: "/batch/" + encodeURIComponent(j.batch_id) }, j.batch_id) : ""),
        kv("Depends on", (j.depends_on || []).length ? (j.depends_on || []).map((d) => h("a", { href: "/job/" + d, class: "mono dep" }, d.slice(0, 8))) : ""),
        kv("Retries", `${j.retry_count}/${j.max_retries}`),
        kv("Mode", j.mode),
        kv("Provider", j.provider),
        kv("Usage", usageText(j.usage)),
        kv("Created", time(j.created_at)),
        kv("Updated", time(j.updated_at)),
        kv("Error", j.error_message),
      ),
    );
    promptEl.textContent = j.prompt;
    designEl.textContent = j.design || "—";
    if (j.error_log && (j.error_log.snippet || j.error_log.line)) {
      clear(errBox).append(
        h("h3", {}, "Compile error", j.error_log.line ? ` at line ${j.error_log.line}` : ""),
        h("p", {}, j.error_message || ""),
        h("pre", { class: "text snippet", id: "error-snippet" }, j.error_log.snippet || ""),
      );
      errBox.hidden = false;
    } else {
      errBox.hidden = true;
    }
    showLatex(false);
    if (j.pdf_url && j.status === "completed" && pdfShown !== String(j.revision)) {
      pdfShown = String(j.revision);
      blob(`/jobs/${id}/pdf`)
        .then((b) => b.arrayBuffer())
        .then((data) => renderPDF(pdfEl, new Uint8Array(data)))
        .catch((e) => clear(pdfEl).append(h("p", { class: "alert" }, "PDF: " + describe(e))));
    }
  }

  async function load() {
    const v = await call("GET", `/jobs/${id}`);
    if (stopped) return;
    job = v;
    render();
    loadConversation();
  }

  async function loadConversation() {
    try {
      const c = await call("GET", `/jobs/${id}/conversation`);
      if (stopped) return;
      clear(convEl);
      if (!c.messages.length) convEl.append(h("p", { class: "muted" }, "No turns yet."));
      c.messages.forEach((t, i) => {
        const meta = [t.role, t.stage, time(t.time), t.model, usageText(t.usage)].filter(Boolean).join(" · ");
        convEl.append(h("details", { class: "turn role-" + String(t.role).replace(/[^a-z]/g, ""), open: i >= c.messages.length - 2 }, h("summary", {}, meta), h("pre", { class: "text" }, t.content)));
      });
    } catch (e) {
      clear(convEl).append(h("p", { class: "alert" }, describe(e)));
    }
  }

  function addEvent(ev) {
    if (ev.revision <= lastRev) return false;
    lastRev = ev.revision;
    const err = ev.error ? [ev.error.message, ev.error.line ? ` (line ${ev.error.line})` : ""].join("") : "";
    timeline.append(h("tr", { "data-status": ev.status }, h("td", { class: "mono" }, time(ev.time)), h("td", {}, badge(ev.status)), h("td", {}, ev.step), h("td", {}, ev.message), h("td", {}, err)));
    return true;
  }

  let reload = null;
  function follow() {
    stopStream();
    stopStream = stream(
      `/jobs/${id}/events`,
      (ev) => {
        if (!addEvent(ev) || reload) return;
        reload = setTimeout(() => {
          reload = null;
          load().catch(showError);
        }, 150);
      },
      { reconnect: false, onError: (e) => e.status && showError(e) },
    );
  }

  (async () => {
    try {
      await load();
      const hist = await call("GET", `/jobs/${id}/history`);
      if (stopped) return;
      hist.events.forEach(addEvent);
      // The job may have changed between its read and the history's: the
      // stream then starts at a revision already shown and triggers no reload.
      if (lastRev > (job.revision || 0)) await load();
      if (stopped) return;
      follow();
    } catch (e) {
      if (!stopped) {
        clear(root);
        onFailure(root, e);
      }
    }
  })();
  return () => {
    stopped = true;
    stopStream();
    clearTimeout(reload);
    editor.view.destroy();
  };
}
