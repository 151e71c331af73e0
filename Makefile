# tickstream — build, run and test. `make run` and `make test` work on a
# fresh machine: every target installs or fetches what it needs.

GO      ?= go
BIN     := bin/tickstream
LISTEN  ?= 127.0.0.1:8080
GOTEST  ?= $(GO) test -race -count=1 -timeout 10m

.DEFAULT_GOAL := build

# Kafka integration tests run against real Apache Kafka (jars from Maven
# Central); only the packages with `kafka`-tagged tests are run there.
KAFKA_GO_PKGS ?= ./internal/kafkatest/ ./ingest/ ./server/
include testenv/kafka/kafka.mk
-include web/web.mk

.PHONY: build run test test-go deps fuzz bench vet clean

deps:
	$(GO) mod download

build: deps
	$(GO) build -o $(BIN) ./cmd/tickstream

# The dashboard is built first so that the binary embeds it.
run: web
	$(GO) build -o $(BIN) ./cmd/tickstream
	./$(BIN) serve --listen $(LISTEN)

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# The whole suite: Go unit and end-to-end tests (embedded broker), the
# integration tests against real Apache Kafka, and the web SDK and dashboard
# tests (vitest, headless Chromium).
test: vet test-go test-kafka test-web
	@echo "make test: all suites passed"

test-go: deps
	$(GOTEST) ./...

FUZZTIME ?= 20s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime $(FUZZTIME) ./codec/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeCommands$$' -fuzztime $(FUZZTIME) ./codec/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeMessages$$' -fuzztime $(FUZZTIME) ./codec/

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./codec/ ./snapshot/ ./fanout/

clean:
	rm -rf bin results
