#!/usr/bin/env bash
# Starts sheetd with its embedded NATS server, submits one job with sheetctl, writes
# the PDF to the current directory, then keeps sheetd serving until Ctrl-C.
# RUN_ONCE=1 stops sheetd after the job instead. A sheetd already running on the
# data dir (SHEETPIPE_DATA_DIR, default data) or the ports makes it stop at once.
set -euo pipefail
cd "$(dirname "$0")/.."
http=${SHEETPIPE_HTTP_ADDR:-127.0.0.1:8080}
listen=${SHEETPIPE_NATS_LISTEN:-127.0.0.1:4222}
data=${SHEETPIPE_DATA_DIR:-data}
log=$data/sheetd.log
lock=$data/sheetd.lock
export SHEETPIPE_LOG_FORMAT=${SHEETPIPE_LOG_FORMAT:-text}
mkdir -p "$data"
# A sheetd that already answers on this address is not the one this run starts.
if curl -fs "http://$http/readyz" >/dev/null 2>&1; then
	holder=$(cat "$lock" 2>/dev/null || true)
	echo "run.sh: a sheetd already answers on http://$http${holder:+ (pid $holder holds $lock)}." >&2
	echo "Stop it (Ctrl-C in its terminal${holder:+, or kill $holder}), or run this one with another" >&2
	echo "SHEETPIPE_DATA_DIR, SHEETPIPE_HTTP_ADDR and SHEETPIPE_NATS_LISTEN." >&2
	exit 1
fi
# Always the embedded server here, even if NATS_URL is set for other tools. The log
# is appended to: an earlier sheetd's lines stay.
env -u NATS_URL ./bin/sheetd 2>>"$log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT INT TERM
echo "sheetd starting (pid $pid, log $log)..."
# ours: sheetd $pid is alive and holds the data dir's lock (it writes its pid there).
ours() { kill -0 "$pid" 2>/dev/null && [ "$(cat "$lock" 2>/dev/null)" = "$pid" ]; }
exited() {
	echo "sheetd (pid $pid) exited; the end of $log:" >&2
	tail -5 "$log" >&2
	exit 1
}
for _ in $(seq 1 120); do
	kill -0 $pid 2>/dev/null || exited
	curl -fs "http://$http/readyz" >/dev/null 2>&1 && break
	sleep 1
done
curl -fs "http://$http/readyz" >/dev/null || { tail -20 "$log"; echo "sheetd not ready after 120s"; exit 1; }
ours || exited
./bin/sheetctl --server "nats://$listen" submit --wait "${PROMPT:-A fractions worksheet for grade 5}"
[ "${RUN_ONCE:-0}" = 1 ] && exit 0
cat <<MSG

sheetd is running (pid $pid): console and metrics on http://$http/, NATS on nats://$listen.
Put sheetctl on your PATH:   export PATH="$PWD/bin:\$PATH"
Then, in another terminal:
  sheetctl submit --wait "A multiplication worksheet, 20 exercises, grade 3"
  sheetctl submit --wait "Spelling words cat, dog, fish"
  sheetctl list
  sheetctl watch          # every job's events; Ctrl-C stops
  sheetctl help
Ctrl-C here stops sheetd.
MSG
wait $pid
