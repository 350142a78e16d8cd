#!/usr/bin/env bash
# Starts sheetd with its embedded NATS server, submits one job with sheetctl, writes
# the PDF to the current directory, then keeps sheetd serving until Ctrl-C.
# RUN_ONCE=1 stops sheetd after the job instead.
set -euo pipefail
cd "$(dirname "$0")/.."
http=${SHEETPIPE_HTTP_ADDR:-127.0.0.1:8080}
listen=${SHEETPIPE_NATS_LISTEN:-127.0.0.1:4222}
export SHEETPIPE_LOG_FORMAT=${SHEETPIPE_LOG_FORMAT:-text}
mkdir -p data
# Always the embedded server here, even if NATS_URL is set for other tools.
env -u NATS_URL ./bin/sheetd 2> data/sheetd.log &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT INT TERM
echo "sheetd starting (pid $pid, log data/sheetd.log)..."
for _ in $(seq 1 120); do
	curl -fs "http://$http/readyz" >/dev/null 2>&1 && break
	kill -0 $pid 2>/dev/null || { tail -20 data/sheetd.log; echo "sheetd exited"; exit 1; }
	sleep 1
done
curl -fs "http://$http/readyz" >/dev/null || { tail -20 data/sheetd.log; echo "sheetd not ready after 120s"; exit 1; }
./bin/sheetctl --server "nats://$listen" submit --wait "${PROMPT:-A fractions worksheet for grade 5}"
[ "${RUN_ONCE:-0}" = 1 ] && exit 0
echo "sheetd is running: metrics on http://$http/metrics, NATS on nats://$listen. Ctrl-C stops it."
wait $pid
