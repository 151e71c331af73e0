# tickstream — build, run and test. `make run` and `make test` work on a
# fresh machine: every target installs or fetches what it needs.

GO      ?= go
BIN     := bin/tickstream
LISTEN  ?= 127.0.0.1:8080
# `tickstream --version` reports it; without git (a source tarball), the
# binary falls back to what Go stamped in it.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null)
GOBUILD := $(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/tickstream
GOTEST  ?= $(GO) test -race -count=1 -timeout 10m

.DEFAULT_GOAL := build

# Kafka integration tests run against real Apache Kafka (jars from Maven
# Central); only the packages with `kafka`-tagged tests are run there.
KAFKA_GO_PKGS ?= ./internal/kafkatest/ ./ingest/ ./server/ ./cmd/tickstream/
include testenv/kafka/kafka.mk
-include web/web.mk

.PHONY: build run test test-go deps fuzz fuzz-short bench gobench vet clean image test-image podman test-production

deps:
	@echo "make: fetching the Go modules (quiet; the first time takes a while)"
	@$(GO) mod download

build: deps
	@echo "make: compiling $(BIN) $(VERSION) (the first build compiles every dependency: a minute or two)"
	@$(GOBUILD)
	@echo "make: built $(BIN): $$(./$(BIN) --version)"

# The dashboard is built first so that the binary embeds it.
run: deps web
	@echo "make: compiling $(BIN) $(VERSION) with the dashboard (the first build compiles every dependency: a minute or two)"
	@$(GOBUILD)
	./$(BIN) serve --listen $(LISTEN) --sim-history 24h

# The binary's commands (watch, produce, token, bench) are for every desktop:
# the other systems are vetted too, which compiles them there.
vet:
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./...
	GOOS=windows $(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# The whole suite: Go unit and end-to-end tests (embedded broker), the
# integration tests against real Apache Kafka, and the web SDK and dashboard
# tests (vitest, headless Chromium).
test: vet test-go fuzz-short test-kafka test-web test-production test-image
	@echo "make test: all suites passed"

test-go: deps
	$(GOTEST) ./...

# Every fuzz target, each for FUZZTIME: the client-message, server-message
# and Kafka-record decoders, the checkpoint reader, the WebSocket frame
# reader (the server's and the benchmark's), and the bars against their reference. `go test -fuzz`
# takes one target and one package at a time, hence one line each.
FUZZTIME ?= 20s
FUZZ_TARGETS := ./codec/:FuzzDecodeRecord ./codec/:FuzzDecodeCommands \
	./codec/:FuzzDecodeMessages ./checkpoint/:FuzzDecode ./internal/wsframe/:FuzzReader \
	./bars/:FuzzBars
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} in $${t%%:*} for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) $${t%%:*}; \
	done

# The short pass that make test (and so CI) runs.
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=5s

# The engine microbenchmarks (go test -bench) of codec, snapshot and fanout,
# and ingest's decode-and-apply throughput on one core (records/s).
gobench:
	$(GO) test -run '^$$' -bench . -benchmem ./codec/ ./snapshot/ ./fanout/
	$(GO) test -run '^$$' -bench 'Ingest$$' -benchmem -cpu 1 ./ingest/
	$(GO) test -run '^$$' -bench IngestKafka -benchtime 3x -cpu 1,2 ./ingest/
	$(GO) test -run '^$$' -bench Compression ./server/

# The standard load suite of docs/BENCHMARKS.md, under 5 minutes: each
# scenario against a fresh embedded server (overload: twice the server's
# knee, judged by the age of what arrives), then a find-max run. Summaries,
# JSON and HTML plots go to $(BENCH_OUT) (git ignores results/); a failed
# run does not stop the others, and fails the target at the end.
BENCH_STAMP := $(shell date -u +%Y%m%dT%H%M%SZ)
BENCH_OUT   ?= results/bench-$(BENCH_STAMP)
BENCH_FLAGS ?= --embedded --warmup 5s --duration 20s
BENCH_RUNS  := dashboard firehose skew storm overload find-max
bench: build
	@mkdir -p $(BENCH_OUT)
	@start=$$(date +%s); failed=; for s in $(BENCH_RUNS); do \
		echo "== $$s"; \
		if [ $$s = find-max ]; then \
			args="--embedded --scenario skew --find-max --rate 250 --step-factor 1.5 --max-steps 8 --warmup 2s --duration 6s"; \
		else \
			args="$(BENCH_FLAGS) --scenario $$s"; \
		fi; \
		./$(BIN) bench $$args --json $(BENCH_OUT)/$$s.json --plot $(BENCH_OUT)/$$s.html > $(BENCH_OUT)/$$s.txt || failed="$$failed $$s"; \
		cat $(BENCH_OUT)/$$s.txt; \
	done; \
	echo "make bench: results in $(BENCH_OUT), $$(( $$(date +%s) - start )) s in all"; \
	if [ -n "$$failed" ]; then echo "make bench: failed:$$failed"; exit 1; fi

# The README's "Production in ten minutes", every command as written, against
# real Apache Kafka (the newest default version, on ports of its own) with
# the dashboard in headless Chromium: web/test/production/.
PROD_KAFKA_ENV = KAFKA_PORT=9192 KAFKA_SASL_PORT=9194 KAFKA_SSL_PORT=9195
test-production: web chromium deps
	@$(GOBUILD)
	@trap '$(PROD_KAFKA_ENV) $(KAFKA_SH) down >/dev/null 2>&1 || true' EXIT; \
	$(PROD_KAFKA_ENV) $(KAFKA_SH) up $(lastword $(KAFKA_VERSIONS)) && \
	cd web && TICKSTREAM_BIN=$(abspath $(BIN)) TICKSTREAM_KAFKA_BROKERS=127.0.0.1:9192 CHROMIUM_PATH=$(CHROMIUM) \
		$(NPM) exec -- vitest run --config vitest.production.config.ts

# The container image of the Dockerfile (deploy/kubernetes runs it), with
# docker or podman, whichever is installed; the dashboard is built first so
# that the binary embeds it.
IMAGE     ?= tickstream:latest
CONTAINER ?= $(shell command -v docker || command -v podman)
image: web
	@test -n "$(CONTAINER)" || { echo "make image: install docker or podman"; exit 1; }
	$(CONTAINER) build --build-arg VERSION=$(or $(VERSION),dev) -t $(IMAGE) .

# Builds the image with podman (installed from Debian's packages when
# missing) and checks it: see testenv/image/test.sh.
test-image: web podman
	testenv/image/test.sh

podman:
	@command -v podman >/dev/null || { echo "installing podman (Debian package)"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y podman; }

clean:
	rm -rf bin results
