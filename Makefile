# sheetpipe. `make run` and `make test` install what a fresh Debian machine lacks.
GO       ?= go
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TEXLIVE  := texlive-latex-base texlive-latex-recommended texlive-fonts-recommended
PROMPT   ?= A fractions worksheet for grade 5 with 50% & $$5 examples

.PHONY: run test texlive deps build vet clean

## run: install texlive if missing, build, start sheetd (embedded NATS), submit one job, write its PDF here, keep serving
run: deps build
	PROMPT='$(PROMPT)' ./scripts/run.sh

## test: install what the tests need, then go vet and go test -race
test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

## texlive: install pdflatex and the standard packages from Debian when missing
texlive:
	@command -v pdflatex >/dev/null 2>&1 || { \
		echo "installing texlive ($(TEXLIVE))"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(TEXLIVE); }

deps: texlive
	$(GO) mod download

build:
	$(GO) build -o bin/ ./cmd/sheetd ./cmd/sheetctl

vet:
	gofmt -l . | (! grep .) && $(GO) vet ./...

clean:
	rm -rf bin data
