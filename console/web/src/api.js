// The console talks only to sheetd's HTTP API, with the bearer token the user
// gave (kept in localStorage) when sheetd asks for one.
const TOKEN_KEY = "sheetpipe.token";

export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function token() {
  return localStorage.getItem(TOKEN_KEY) || "";
}
export function setToken(t) {
  if (t) localStorage.setItem(TOKEN_KEY, t);
  else localStorage.removeItem(TOKEN_KEY);
}

function headers(extra) {
  const hs = new Headers(extra || {});
  const t = token();
  if (t) hs.set("Authorization", "Bearer " + t);
  return hs;
}

async function fail(resp) {
  let msg = resp.statusText;
  try {
    const body = await resp.json();
    if (body && typeof body.error === "string") msg = body.error;
  } catch {
    /* not JSON */
  }
  return new APIError(resp.status, msg);
}

export async function call(method, path, body, contentType) {
  const init = { method, headers: headers(), cache: "no-store" };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers.set("Content-Type", contentType || "application/json");
  }
  const resp = await fetch(path, init);
  if (!resp.ok) throw await fail(resp);
  return resp.json();
}

export async function blob(path) {
  const resp = await fetch(path, { headers: headers(), cache: "no-store" });
  if (!resp.ok) throw await fail(resp);
  return resp.blob();
}

// stream reads server-sent events from path with fetch (EventSource cannot send
// the Authorization header) and calls onEvent with each decoded data; it
// reconnects after a break until the returned stop is called. onEnd runs when the
// server ends the stream (a final state).
export function stream(path, onEvent, { onError, onEnd, reconnect = true } = {}) {
  const ctl = new AbortController();
  let stopped = false;
  (async () => {
    while (!stopped) {
      try {
        const resp = await fetch(path, { headers: headers(), signal: ctl.signal, cache: "no-store" });
        if (!resp.ok) throw await fail(resp);
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const frame = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const data = frame.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
            if (data) {
              try {
                onEvent(JSON.parse(data));
              } catch (e) {
                console.error("event", e);
              }
            }
          }
        }
        if (onEnd) onEnd();
        if (!reconnect) return;
      } catch (e) {
        if (stopped) return;
        if (onError) onError(e);
        if (e instanceof APIError && (e.status === 401 || e.status === 403 || e.status === 404)) return;
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  })();
  return () => {
    stopped = true;
    ctl.abort();
  };
}
