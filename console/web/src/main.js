import { APIError, setToken, token } from "./api.js";
import { h, clear } from "./dom.js";
import { listView } from "./list.js";
import { jobView } from "./job.js";
import { submitView } from "./submit.js";
import { overviewView } from "./overview.js";

const main = document.getElementById("main");
let cleanup = null;

// A view is a function (root, params) that renders into root and may return a
// function that stops its streams.
const routes = [
  [/^\/$/, listView],
  [/^\/job\/([0-9a-fA-F-]{36})$/, jobView],
  [/^\/batch\/([^/]+)$/, (root, m) => listView(root, m, { batch: decodeURIComponent(m[1]) })],
  [/^\/submit$/, submitView],
  [/^\/overview$/, overviewView],
];

export function navigate(url, replace) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  render();
  focusMain();
}

// focusMain puts the focus at the start of the new page when the view did not
// place it (the focused link was replaced), so that Tab continues from there.
function focusMain() {
  if (!document.activeElement || document.activeElement === document.body) main.focus({ preventScroll: true });
}

// onFailure shows the login for a 401, and any other failure plainly.
export function onFailure(root, err) {
  if (err instanceof APIError && err.status === 401) {
    showLogin(describe(err));
    return;
  }
  root.append(h("p", { class: "alert", role: "alert" }, describe(err)));
}

export function describe(err) {
  return err instanceof APIError ? `${err.status}: ${err.message}` : String(err && err.message ? err.message : err);
}

function showLogin(why) {
  stop();
  clear(main);
  const input = h("input", { type: "password", id: "token", name: "token", autocomplete: "current-password", required: true });
  const form = h(
    "form",
    { class: "card login", id: "login" },
    h("h1", {}, "Sign in"),
    h("p", {}, "This sheetd requires its API token (SHEETPIPE_API_TOKEN)."),
    why && token() ? h("p", { class: "alert", role: "alert" }, why) : null,
    h("label", { for: "token" }, "API token"),
    input,
    h("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    render();
  });
  main.append(form);
  input.focus();
  document.getElementById("signout").hidden = true;
}

function stop() {
  if (cleanup) cleanup();
  cleanup = null;
}

function render() {
  stop();
  clear(main);
  document.getElementById("signout").hidden = !token();
  const path = location.pathname;
  for (const [re, view] of routes) {
    const m = path.match(re);
    if (m) {
      cleanup = view(main, m) || null;
      return;
    }
  }
  main.append(h("h1", {}, "Not found"), h("p", {}, "No console page at ", h("code", {}, path), "."));
}

// Links inside the console navigate without a reload; modified clicks keep the
// browser's behaviour (new tab, ...).
document.addEventListener("click", (e) => {
  const a = e.target.closest && e.target.closest("a[href]");
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || a.hasAttribute("download") || a.target) return;
  if (!routes.some(([re]) => re.test(url.pathname))) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", () => {
  render();
  focusMain();
});
document.getElementById("signout").addEventListener("click", () => {
  setToken("");
  showLogin("");
});
render();
