# syntax=docker/dockerfile:1
# sheetd and sheetctl on Debian with pdflatex. Build: docker build -t sheetpipe/sheetd .
# Run with its embedded NATS server, reachable from the host as user client
# (deploy/nats/auth.conf's users; sheetd logs in as user sheetd):
#   export SHEETPIPE_API_TOKEN=... SHEETD_PASSWORD=... CLIENT_PASSWORD=...
#   docker run -d --name sheetd -v sheetd-data:/var/lib/sheetd/data \
#     -p 127.0.0.1:8080:8080 -p 127.0.0.1:4222:4222 \
#     -e SHEETPIPE_API_TOKEN="$SHEETPIPE_API_TOKEN" \
#     -e SHEETPIPE_NATS_LISTEN=0.0.0.0:4222 -e SHEETPIPE_NATS_CONFIG=/etc/sheetpipe/nats-auth.conf \
#     -e SHEETD_PASSWORD="$SHEETD_PASSWORD" -e CLIENT_PASSWORD="$CLIENT_PASSWORD" \
#     -e NATS_USER=sheetd -e NATS_PASSWORD="$SHEETD_PASSWORD" \
#     --security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined \
#     sheetpipe/sheetd
#   sheetctl --server "nats://client:$CLIENT_PASSWORD@127.0.0.1:4222" submit --wait "fractions, grade 5"
# (the compile jail needs user namespaces and a fresh /proc; see README "Compile sandbox";
# the embedded server refuses 0.0.0.0 without users; TestDockerRunExample runs these settings)
# compose.yaml runs two of these against a 3-node NATS cluster.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/sheetd ./cmd/sheetctl

FROM debian:bookworm-slim
# pdflatex and the TeX packages worksheets use (the Makefile's TEXLIVE list: about
# 610 MB; not texlive-fonts-extra, 1.4 GB for icon fonts); bubblewrap, the jail of every
# compile; CA roots for the LLM API;
# curl for the health check.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      texlive-latex-base texlive-latex-recommended texlive-fonts-recommended \
      texlive-latex-extra texlive-pictures texlive-science texlive-plain-generic \
      lmodern cm-super texlive-lang-french texlive-lang-german texlive-lang-spanish \
      texlive-lang-italian texlive-lang-portuguese texlive-humanities \
      bubblewrap ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 sheetd \
 && useradd --system --uid 10001 --gid sheetd --home-dir /var/lib/sheetd --create-home --shell /usr/sbin/nologin sheetd
COPY --from=build /out/sheetd /out/sheetctl /usr/local/bin/
COPY deploy/nats/auth.conf /etc/sheetpipe/nats-auth.conf
USER 10001:10001
WORKDIR /var/lib/sheetd
ENV SHEETPIPE_HTTP_ADDR=0.0.0.0:8080 \
    SHEETPIPE_DATA_DIR=/var/lib/sheetd/data \
    SHEETPIPE_LOG_FORMAT=json
EXPOSE 8080
# SIGTERM hands in-flight work back (SHEETPIPE_SHUTDOWN_TIMEOUT, 25s): give the
# container longer than that to stop (docker stop -t 40, compose stop_grace_period).
STOPSIGNAL SIGTERM
# Checks port 8080: change it together with SHEETPIPE_HTTP_ADDR.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["/usr/local/bin/sheetd"]
