// Package deploy holds no code: its tests check the deployment files against the
// real thing. compose.yaml is loaded with the compose-spec parser; the NATS
// configuration in deploy/nats runs in an in-process nats-server, where sheetd
// and a client log in with their users and permissions; deploy/prometheus and
// the Grafana dashboard are checked against the metrics sheetd exports, and a real
// Prometheus (Debian's package) scrapes a live sheetd.
package deploy
