# sheetpipe. `make run` and `make test` install what a fresh Debian machine lacks.
GO       ?= go
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TEXLIVE  := texlive-latex-base texlive-latex-recommended texlive-fonts-recommended \
            texlive-latex-extra texlive-pictures texlive-science texlive-plain-generic \
            lmodern cm-super texlive-lang-french texlive-lang-german texlive-lang-spanish \
            texlive-lang-italian texlive-lang-portuguese texlive-humanities \
            poppler-utils
# One file of each package above: a machine lacking any of them gets the whole list.
TEXFILES := article.cls enumitem.sty exam.cls tikz.sty siunitx.sty ulem.sty lmodern.sty \
            verse.sty type1ec.sty frenchb.ldf ngerman.ldf spanish.ldf italian.ldf portuguese.ldf
PROMPT   ?= A fractions worksheet for grade 5 with 50% & $$5 examples

.PHONY: run test texlive bubblewrap prometheus deps build vet clean bench

## run: install texlive if missing, build, start sheetd (embedded NATS), submit one job, write its PDF here, keep serving
run: deps build
	PROMPT='$(PROMPT)' ./scripts/run.sh

## test: install what the tests need, then go vet and go test -race
## (SHEETPIPE_REQUIRE_PROMETHEUS=1: the live Prometheus test fails rather than skips without it;
## SHEETPIPE_REQUIRE_BROWSER=1: the console's browser tests fail rather than skip without chromium or firefox-esr)
test: deps nats tour-tools prometheus chromium console-check
	$(GO) vet ./...
	SHEETPIPE_REQUIRE_PROMETHEUS=1 SHEETPIPE_REQUIRE_BROWSER=1 $(GO) test -race -count=1 -timeout 30m ./...
	$(MAKE) fuzz

## fuzz: run each fuzz target for FUZZTIME (seeds in <pkg>/testdata/fuzz; a failing input is written there)
FUZZTIME ?= 15s
.PHONY: fuzz
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDecodeRequest -fuzztime=$(FUZZTIME) ./events
	$(GO) test -run='^$$' -fuzz=FuzzParseLog -fuzztime=$(FUZZTIME) ./latex

## texlive: install pdflatex and the TeX packages worksheets use from Debian when any is
## missing (checked by kpsewhich, so a machine with only the base set gets the rest);
## apt-get's progress shown, the time at the end
texlive:
	@command -v pdflatex >/dev/null 2>&1 && command -v kpsewhich >/dev/null 2>&1 && command -v pdftotext >/dev/null 2>&1 && \
		[ "$$(kpsewhich $(TEXFILES) | wc -l)" -eq "$(words $(TEXFILES))" ] || { \
		start=$$(date +%s); \
		echo "texlive: apt-get update"; \
		$(SUDO) apt-get update -qq && \
		echo "texlive: installing $(TEXLIVE) (about 310 MB to download, 610 MB on disk)" && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $(TEXLIVE) && \
		echo "texlive: installed in $$(( $$(date +%s) - start ))s"; }

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
## (natscli is a separate tool: it is not in go.mod). First it builds the sheetbench of
## BENCH_BASELINE (a git ref: the commit before issue 14's job-write redesign) from a
## `git archive` of it in a temp dir and runs that build's overhead scenario, so the report
## sets the baseline's figures beside this tree's (a clone without the ref skips only that).
NATSCLI_VERSION ?= v0.5.1
BENCH_BASELINE  ?= 65b303a
bench: deps build
	GOBIN=$(CURDIR)/bin $(GO) install github.com/nats-io/natscli/nats@$(NATSCLI_VERSION)
	$(GO) build -o bin/ ./cmd/sheetbench
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && report="$$tmp/baseline.md" && \
	if ! git rev-parse --verify --quiet '$(BENCH_BASELINE)^{commit}' >/dev/null; then \
		echo "bench: git ref $(BENCH_BASELINE) (BENCH_BASELINE) is not in this clone: skipping the side-by-side baseline run"; \
		echo "skipped: git ref $(BENCH_BASELINE) is not in this clone" >"$$report"; \
	else \
		echo "bench: building the sheetbench of $(BENCH_BASELINE) in $$tmp/src"; \
		mkdir "$$tmp/src" && git archive '$(BENCH_BASELINE)' | tar -x -C "$$tmp/src" && \
		(cd "$$tmp/src" && $(GO) build -o "$$tmp/sheetbench" ./cmd/sheetbench) && \
		echo "bench: overhead scenario of $(BENCH_BASELINE)" && \
		"$$tmp/sheetbench" -scenarios overhead -out "$$report" || \
		echo "skipped: the build or overhead run of $(BENCH_BASELINE) failed (see make bench's output)" >"$$report"; \
	fi && \
	./bin/sheetbench -nats bin/nats -sheetd bin/sheetd -out BENCHMARKS.md -compare "$$report" -compare-ref '$(BENCH_BASELINE)'

## nats: install natscli (the nats command) into bin/ from its module when bin/nats is
## missing (the README's tour uses it; docs/docs_test.go runs the tour with it)
.PHONY: nats
nats:
	@[ -x bin/nats ] || { echo "installing natscli $(NATSCLI_VERSION) into bin/"; \
		GOBIN=$(CURDIR)/bin $(GO) install github.com/nats-io/natscli/nats@$(NATSCLI_VERSION); }

## tour-tools: install what docs/docs_test.go's TestTour runs besides sheetd, sheetctl and nats
## (curl, jq, openssl, ip from iproute2, unshare from util-linux) from Debian when any is missing
TOUR_TOOLS := curl:curl jq:jq openssl:openssl ip:iproute2 unshare:util-linux
.PHONY: tour-tools
tour-tools:
	@missing=; for t in $(TOUR_TOOLS); do command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t#*:}"; done; \
	[ -z "$$missing" ] || { echo "installing$$missing (Debian packages; the docs' tour runs them)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; }

## bubblewrap: install bwrap, the jail of every compile (COMPILE_SANDBOX=bwrap), when missing
bubblewrap:
	@command -v bwrap >/dev/null 2>&1 || { \
		echo "installing bubblewrap"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends bubblewrap; }

deps: texlive bubblewrap
	$(GO) mod download

## build: sheetd and sheetctl into bin/, stamped with `git describe` and the revision
## (`sheetd --version`, sheetpipe_build_info)
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo devel)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X github.com/sheetpipe/sheetpipe/internal/buildinfo.version=$(VERSION) -X github.com/sheetpipe/sheetpipe/internal/buildinfo.revision=$(REVISION)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/sheetd ./cmd/sheetctl

vet:
	gofmt -l . | (! grep .) && $(GO) vet ./...

clean:
	rm -rf bin data

## chromium: install Debian's chromium and firefox-esr when missing (the console's browser
## tests drive them headless: chromium over CDP, firefox-esr over Marionette)
.PHONY: chromium console console-check screenshots
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium (Debian package)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }
	@command -v firefox-esr >/dev/null 2>&1 || { \
		echo "installing firefox-esr (Debian package)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends firefox-esr; }

## console: rebuild the web console's bundle (console/dist, committed and embedded) from
## console/web with the versions pinned in its package-lock.json (node and npm from Debian when missing)
console:
	@command -v npm >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends nodejs npm; }
	cd console/web && npm ci --no-audit --no-fund && node build.mjs

## console-check: the committed bundle is what its sources and lockfile build
console-check: console
	@git diff --quiet --exit-code -- console/dist || { \
		echo "console/dist differs from a build of console/web: run make console and commit console/dist"; \
		git diff --stat -- console/dist; exit 1; }

## screenshots: rewrite docs/console-*.png from the console's browser tests
screenshots: chromium
	SHEETPIPE_SCREENSHOTS=1 SHEETPIPE_REQUIRE_BROWSER=1 $(GO) test -count=1 -run 'Test' ./console
