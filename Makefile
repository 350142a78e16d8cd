# sheetpipe. `make run` and `make test` install what a fresh Debian machine lacks.
GO       ?= go
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TEXLIVE  := texlive-latex-base texlive-latex-recommended texlive-fonts-recommended
PROMPT   ?= A fractions worksheet for grade 5 with 50% & $$5 examples

.PHONY: run test texlive bubblewrap prometheus deps build vet clean bench

## run: install texlive if missing, build, start sheetd (embedded NATS), submit one job, write its PDF here, keep serving
run: deps build
	PROMPT='$(PROMPT)' ./scripts/run.sh

## test: install what the tests need, then go vet and go test -race
## (SHEETPIPE_REQUIRE_PROMETHEUS=1: the live Prometheus test fails rather than skips without it)
test: deps prometheus
	$(GO) vet ./...
	SHEETPIPE_REQUIRE_PROMETHEUS=1 $(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) fuzz

## fuzz: run each fuzz target for FUZZTIME (seeds in <pkg>/testdata/fuzz; a failing input is written there)
FUZZTIME ?= 15s
.PHONY: fuzz
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDecodeRequest -fuzztime=$(FUZZTIME) ./events
	$(GO) test -run='^$$' -fuzz=FuzzParseLog -fuzztime=$(FUZZTIME) ./latex

## texlive: install pdflatex and the standard packages from Debian when missing
texlive:
	@command -v pdflatex >/dev/null 2>&1 || { \
		echo "installing texlive ($(TEXLIVE))"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(TEXLIVE); }

## prometheus: install prometheus and promtool from Debian when missing (deploy's tests run them).
## Without systemd, the package's postinst would start a daemon on :9090 through its
## init script (and fail if that port is taken): a policy-rc.d that denies service
## starts, as container images ship, is put in place for the install when none exists.
prometheus:
	@command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || { \
		echo "installing prometheus (Debian package)"; \
		nostart=; \
		if [ ! -d /run/systemd/system ] && [ ! -e /usr/sbin/policy-rc.d ]; then \
			nostart=1; printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null && $(SUDO) chmod 755 /usr/sbin/policy-rc.d; \
		fi; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus; rc=$$?; \
		[ -z "$$nostart" ] || $(SUDO) rm -f /usr/sbin/policy-rc.d; \
		exit $$rc; }

## bench: install natscli into bin/ from its module, build sheetd and sheetbench, run every
## benchmark scenario against one embedded nats-server, print the tables and rewrite BENCHMARKS.md
## (natscli is a separate tool: it is not in go.mod)
NATSCLI_VERSION ?= v0.5.1
bench: texlive build
	GOBIN=$(CURDIR)/bin $(GO) install github.com/nats-io/natscli/nats@$(NATSCLI_VERSION)
	$(GO) build -o bin/ ./cmd/sheetbench
	./bin/sheetbench -nats bin/nats -sheetd bin/sheetd -out BENCHMARKS.md

## bubblewrap: install bwrap, the jail of every compile (COMPILE_SANDBOX=bwrap), when missing
bubblewrap:
	@command -v bwrap >/dev/null 2>&1 || { \
		echo "installing bubblewrap"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends bubblewrap; }

deps: texlive bubblewrap
	$(GO) mod download

build:
	$(GO) build -o bin/ ./cmd/sheetd ./cmd/sheetctl

vet:
	gofmt -l . | (! grep .) && $(GO) vet ./...

clean:
	rm -rf bin data
