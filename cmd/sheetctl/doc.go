// Command sheetctl is the command-line client of sheetpipe. It connects to
// NATS_URL (--server; default nats://127.0.0.1:4222, the embedded server of a
// local sheetd) with NATS_CREDS (--creds) or NATS_USER and NATS_PASSWORD, or to
// the servers of a saved context (--context, else the current one; see
// config.go), and runs one command:
//
//	sheetctl submit [--wait] [--user U] [--max-retries N] [--mode auto|manual] [--priority high|normal|low] [--depends-on ID,...] [--webhook-url URL] [--job-id ID] "prompt"
//	sheetctl batch [--wait] [--batch-id ID] [--user U] <file.jsonl | ->
//	sheetctl batch get|watch <batch-id>
//	sheetctl import [--dry-run] [--overwrite] [--recompile-missing] [--pdf-dir DIR] <dir>
//	sheetctl get [--latex] <job-id>
//	sheetctl history <job-id>
//	sheetctl watch [job-id]
//	sheetctl list [--status S] [--user U] [--limit N]
//	sheetctl top [--once] [--interval D] [--recent N]
//	sheetctl edit [--wait] <job-id> <file.tex | ->
//	sheetctl retry [--wait] <job-id>
//	sheetctl refine [--wait] <job-id> "instruction"
//	sheetctl abort <job-id>
//	sheetctl pdf [-o file] <job-id>
//	sheetctl context add <name> [--server URL] [--creds F] [--nats-user U] [--nats-password P] [--api URL] [--api-token T] [--use]
//	sheetctl context ls|use <name>|rm <name>
//	sheetctl completion bash|zsh|fish|powershell
//	sheetctl help [command]
//	sheetctl --version
//
// submit, get, list, edit, retry, refine and abort are requests to the control
// API (the NATS micro service "sheetpipe", subjects sheetpipe.<operation>), which
// answer once the service has stored the change. With --wait, and for watch of
// one job, sheetctl follows the job's events on jobs.status (replayed from
// JOB_EVENTS, so none is missed), a dated line each with the time since the run
// started, until its run ends, and saves <job_id>.pdf from object store pdfs
// when it completed; its last line says how the run ended and after how many AI
// fixes and retries. watch without a job id prints every job's events from now
// on. history prints every run of a job from its events in JOB_EVENTS, with
// dates, durations, AI fixes, retries and errors. batch sends one JSON request
// per line of a file as one batch (sheetpipe.batch); batch get shows its status
// (sheetpipe.batch.get), and batch watch (or batch --wait, which then saves
// every completed job's PDF) follows it until every job has ended. top shows
// the pipeline's figures from sheetd's HTTP API (GET /stats at --api, with
// --api-token) and the recent jobs from the control API. All NATS access goes
// through package client.
//
// The commands are built on github.com/spf13/cobra: global flags go before or
// after the command, flags and arguments mix, "--" ends the flags, and cobra
// provides the shell completion scripts. --version prints the version and
// revision `make build` links in (package internal/buildinfo, as sheetd's),
// else those of Go's build information.
//
// Output is for people, or one JSON object per line with --json (events, jobs,
// list rows). Exit status: 0 success; 1 failure, with one line "sheetctl: <what
// failed>: <why>" on stderr (a wait that ends waiting_manual or aborted is a
// failure, as is one that outlasts --timeout, and a server where no sheetd
// answers); 2 bad usage, or a request the service refused as invalid (400); 3
// unknown job or batch (404); 4 not allowed in the job's state, or the job changed
// since the revision a change was based on (409).
package main
