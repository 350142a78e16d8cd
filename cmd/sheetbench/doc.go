// Command sheetbench measures sheetpipe on this machine and writes the results as
// a Markdown report (BENCHMARKS.md under `make bench`). Every figure comes from one
// run against one embedded nats-server (JetStream on a temp dir, TCP on a free
// loopback port) and is reported beside the bound it should be judged against, so
// the ratios mean the same on any machine:
//
//   - baseline: natscli's `nats bench js pub sync` and `nats bench kv put` (16
//     clients each) against that server, on a stream and a bucket sheetbench
//     creates and deletes: the JetStream operations per second available here.
//   - overhead: the real pipeline (broker.Provision, kvstore, consumers) in this
//     process over TCP, with a scripted LLM that answers at once and a
//     benchmark-only compiler that returns a fixed PDF: jobs/s at saturation,
//     JetStream operations per job, the share of the baseline they use and
//     enqueue-to-done latency; then an open-loop run at half that rate for the
//     per-hop queue latency, measured from each request's scheduled send time.
//   - concurrency: the same with a 200 ms LLM, against the Little's-law bound
//     concurrency / service time of the LLM stages.
//   - compile: real pdflatex on a typical worksheet from the offline provider,
//     against cores / single-compile time, and again with identical LaTeX.
//   - memory: RSS of the built sheetd binary with 10,000 jobs queued at design.
//   - format: compile throughput of the typical worksheet and of a pgfplots and
//     a tikz one with the preamble format cache off and on, side by side, and
//     whether their PDFs have the same text and page count.
//   - fairness: a flood user's 1,000 jobs and 10 light users' 5 each with a 50 ms
//     LLM, fairness off (FIFO) and on: the light users' enqueue-to-done and the
//     throughput on ÷ off.
//
// sheetbench never asserts a time: it reports, and marks each target PASS or MISS.
package main
