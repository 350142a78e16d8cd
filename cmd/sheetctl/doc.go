// Command sheetctl is the command-line client of sheetpipe. It connects to
// NATS_URL (--server; default nats://127.0.0.1:4222, the embedded server of a
// local sheetd) with NATS_CREDS (--creds) and runs one command:
//
//	sheetctl submit [--wait] [--user U] [--max-retries N] [--mode auto|manual] [--job-id ID] "prompt"
//	sheetctl watch <job-id>
//	sheetctl pdf [--output file] <job-id>
//	sheetctl help [command]
//
// submit publishes a job request on jobs.prompt and returns once JetStream has
// stored it; with --wait, and for watch, it follows the job's events on jobs.status
// (replayed from JOB_EVENTS, so none is missed) and saves <job_id>.pdf from object
// store pdfs when the job completes. All NATS access goes through package client.
//
// Output is one line per event, or one JSON object per line with --json. Exit
// status: 0 success; 1 failure, with one line "sheetctl: <what failed>: <why>" on
// stderr (a job that ends waiting_manual, aborted or invalid is a failure, as is a
// wait that outlasts --timeout); 2 bad usage.
package main
