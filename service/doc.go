// Package service assembles sheetd: it reads the configuration (environment and
// flags), starts the embedded NATS server or connects to NATS_URL, provisions the
// JetStream resources, runs the pipeline stages this process is configured for and
// serves /metrics, /healthz and /readyz over HTTP until its context ends, then shuts
// down gracefully: stop fetching, let in-flight work finish (or hand it back),
// drain the connection, stop the embedded server.
package service
