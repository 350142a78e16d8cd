// Package api is the control API of sheetd: a transport over the pipeline's
// control operations (Control, implemented by *control.Plane). It owns no
// state and writes no KV; validation, state rules and every write are the
// pipeline's. It owns the two ways users reach those operations:
//
// NATS micro service "sheetpipe" (StartMicro, Stop), visible to `nats micro ls`,
// `info` and `stats` through $SRV.*. One endpoint per operation, each in micro's
// default queue group "q" so every sheetd shares the requests:
//
//	sheetpipe.submit  job request           -> {"job_id"}, once the job is stored
//	sheetpipe.get     {"job_id"}            -> the job with its "revision"
//	sheetpipe.latex   {"job_id","latex","if_revision"?}    -> the job with its "revision"
//	sheetpipe.retry   {"job_id","if_revision"?}            -> the job with its "revision"
//	sheetpipe.refine  {"job_id","instruction","if_revision"?} -> the job with its "revision"
//	sheetpipe.abort   {"job_id","if_revision"?}            -> the job with its "revision"
//	sheetpipe.list    {"status"?,"user_id"?,"limit"?} (or empty) -> {"jobs","truncated"}
//	sheetpipe.batch   {"batch_id"?,"jobs":[job request...]} -> {"batch_id","job_ids"}, once every job is stored
//	sheetpipe.batch.get {"batch_id"}        -> the batch's status {"batch_id","total","counts","done","jobs","created_at"}
//	sheetpipe.import  {"records":[old record...],"dry_run"?,"overwrite"?,"recompile_missing"?} -> {"results":[...]} (sheetctl import)
//	sheetpipe.queue   {"user_id"?} (or empty) -> {"queued","max_queued","max_queued_per_user","user"?,"top","top_as_of"?} (docs/limits.md)
//	sheetpipe.usage   {"user_id","since"?,"until"?} -> {"user_id","since","until","prompt_tokens","completion_tokens","calls","cost_usd"} (docs/usage.md)
//
// (micro endpoint names have no dots: batch.get is the endpoint "batch_get".)
//
// A failed request is answered with the headers Nats-Service-Error-Code (400 bad
// body, 404 unknown job, 409 not allowed in the job's state, 413 body too large,
// 429 queue full (a submit or batch over a queue limit, with a Retry-After
// header; nothing stored), 503 busy, 500 otherwise) and Nats-Service-Error, and the body {"error": "..."}
// (plus "revision", the job's current one, when a change's if_revision is stale).
// Each request runs in its own goroutine (at most 64 per endpoint and process)
// under Config.Timeout, so a slow request delays no other; one that finds no free
// slot before its deadline is refused as busy. Since replies are sent after the
// subscription's handler returns, micro.AddService would count and time only that
// handler: the service answers micro's PING, INFO and STATS itself, with micro's
// types, and `nats micro stats sheetpipe` shows each endpoint's counts taken when
// the reply is sent (every 4xx or 5xx reply an error, last_error "code:message",
// processing time from the request's arrival to its reply).
//
// HTTP routes (Register), the same operations under /jobs: POST /jobs (202 and
// Location), GET /jobs?status=&user_id=&limit=, GET /jobs/{id},
// POST /jobs/{id}/latex (JSON {"latex"}, or the LaTeX itself as text/plain or
// application/x-tex), POST /jobs/{id}/retry|abort (no body, or {"if_revision"}),
// POST /jobs/{id}/refine ({"instruction"}), GET /jobs/{id}/pdf and
// GET /jobs/{id}/events (server-sent events: "id: <revision>", "event: status",
// "data: <status event JSON>"); POST /batches (a JSON batch, or one job request per
// line as application/x-ndjson with ?batch_id=; 202 and Location), GET
// /batches/{id} and GET /batches/{id}/events (server-sent events: "id: <n>",
// "event: batch", "data: <batch status JSON>", the first with every job, each
// later one with the job that changed, the last done); GET /queue?user_id= (the
// unfinished jobs against the queue limits); GET /usage?user_id=&since=&until=
// (sheetpipe.usage). Errors are JSON {"error"} with the status of their
// class, plus 401 for a missing or wrong bearer token (with WWW-Authenticate:
// Bearer), 403 on a public listener without a token, 405 for a wrong method
// (with Allow), 413 for a body over Config.MaxBodyBytes, 415 for a LaTeX body
// or batch of another Content-Type, and 429 with Retry-After for a submit or
// batch over a queue limit. Failed requests are logged at warn ("control request
// failed", with transport, op, job_id, code, error); bodies and the token never.
//
// A change may name the revision it is based on: if_revision in the body, or on
// HTTP If-Match ("12" as the ETag GET /jobs/{id} and every change answer, or 12;
// both given must agree, else 400). The pipeline's CAS write expects that
// revision, so a change based on a revision the job has left is refused (409 with
// the current revision) and writes nothing.
//
// Guarantees: a submit is answered only once its job is in KV, so a get right after
// finds it. A change (latex, retry, refine, abort) is answered with the job as read
// right after the change was written, with its revision; a stage may already have
// moved it on. An event stream starts with the job's current state, sends every
// later state change once, in revision order, and ends after a final state
// (completed, aborted, waiting_manual, or error at step prompt) or when the client
// goes away (http.Server.Shutdown does not end it: cancel the server's
// BaseContext or close the server). Stop ends the micro service once the
// requests in flight are answered. The API replies on NATS and HTTP only; it
// publishes nothing else.
package api
