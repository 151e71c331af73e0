# kafka.mk — Makefile fragment for tests against real Apache Kafka brokers.
# Include it from the root Makefile (`include testenv/kafka/kafka.mk`), or run it
# alone: `make -f testenv/kafka/kafka.mk test-kafka`. Needs java (17+), mvn (only
# to fetch the jars the first time; cached in testenv/kafka/.work) and go.
#
#   make kafka-up   [KAFKA_VERSION=4.4.0] [KAFKA_PORT=9092] [KAFKA_SASL_PORT=9094] [KAFKA_SSL_PORT=9095]
#   make kafka-down [KAFKA_PORT=9092]
#   make kafka-status / kafka-logs
#   make test-kafka [KAFKA_VERSIONS="3.9.2 4.4.0"] [KAFKA_GO_PKGS=./...] [KAFKA_CLUSTER_VERSIONS=4.4.0]
#
# test-kafka brings a broker of each version up, runs the Go tests of the
# kafka-tagged files against it (KAFKA_TEST_RUN), and always brings it down;
# for the versions in KAFKA_CLUSTER_VERSIONS (default: the newest; empty for
# none) it also brings a 3-broker cluster up (kafka.sh cluster-up) and runs
# the tests named TestKafkaCluster* against it. All runs at once, on ports of
# their own (KAFKA_PORT_STEP apart). It fails if any run failed.

# Including this file must not change the includer's default goal.
KAFKA_MK_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)

# Resolved when this file is read, so it must stay above any other include.
KAFKA_MK_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
KAFKA_SH := $(KAFKA_MK_DIR)/kafka.sh
KAFKA_REPO_ROOT := $(abspath $(KAFKA_MK_DIR)/../..)

# Default versions come from kafka.sh (newest 3.9.x, newest 4.x); lazily evaluated.
KAFKA_VERSIONS ?= $(shell $(KAFKA_SH) versions)
KAFKA_VERSION ?= $(lastword $(KAFKA_VERSIONS))
KAFKA_PORT ?= 9092
KAFKA_SASL_PORT ?= 9094
KAFKA_SSL_PORT ?= 9095
KAFKA_GO ?= go
# -p 1: the packages share one broker, and outage tests stop it.
KAFKA_GO_TEST_FLAGS ?= -race -count=1 -p 1 -tags kafka -timeout 15m
KAFKA_GO_PKGS ?= ./...
KAFKA_CLUSTER_VERSIONS ?= $(lastword $(KAFKA_VERSIONS))
KAFKA_CLUSTER_RUN := TestKafkaCluster
# Only the tests of kafka-tagged files need a broker; the packages' other
# tests already ran in the plain `go test` pass, and ran again here they
# cost more than a minute per broker version. Lazily evaluated.
KAFKA_TEST_RUN ?= ^($(shell cd $(KAFKA_REPO_ROOT) && grep -rl --include='*_test.go' '^//go:build.*kafka' . | xargs -r sed -n 's/^func \(Test[A-Za-z0-9_]*\)(t \*testing\.T).*/\1/p' | sort -u | paste -sd'|'))$$

KAFKA_SH_ENV = KAFKA_PORT=$(KAFKA_PORT) KAFKA_SASL_PORT=$(KAFKA_SASL_PORT) KAFKA_SSL_PORT=$(KAFKA_SSL_PORT)

.PHONY: kafka-up kafka-down kafka-status kafka-logs test-kafka

kafka-up:
	@$(KAFKA_SH_ENV) $(KAFKA_SH) up $(KAFKA_VERSION)
	@echo "kafka-up: feed it with  bin/tickstream produce --brokers 127.0.0.1:$(KAFKA_PORT)  (creates the topic ticks if missing)"
	@echo "kafka-up: serve it with bin/tickstream serve --brokers 127.0.0.1:$(KAFKA_PORT) --auth=none  (or --jwt-secret; see tickstream token)"

kafka-down:
	@$(KAFKA_SH_ENV) $(KAFKA_SH) down

kafka-status:
	@$(KAFKA_SH_ENV) $(KAFKA_SH) status

kafka-logs:
	@$(KAFKA_SH_ENV) $(KAFKA_SH) logs

# The versions and the clusters are tested at once, each by test-version.sh
# on ports of its own (the i-th run's are KAFKA_PORT + i*KAFKA_PORT_STEP, and
# so on): most of a run waits on outages and retention, so in turn they took
# more than twice as long. The jars are fetched first, one version at a time
# (concurrent mvn runs share one local repository). Each run's output is
# printed whole when all are done. Each run brings its own broker down when
# it ends, also on failure or interrupt.
KAFKA_PORT_STEP ?= 20

test-kafka:
	@failed=""; runs=""; i=0; out=$$(mktemp -d); \
	trap 'rm -rf "$$out"' EXIT; \
	trap 'stop=1' INT TERM; stop=""; \
	for v in $(KAFKA_VERSIONS); do $(KAFKA_SH) fetch $$v >/dev/null || failed="$$failed $$v(fetch)"; done; \
	[ -z "$$failed" ] || { echo "=== test-kafka: could not fetch the jars of:$$failed"; exit 1; }; \
	for r in $(KAFKA_VERSIONS) $(addprefix cluster-,$(KAFKA_CLUSTER_VERSIONS)); do \
		runs="$$runs $$r"; \
		( KAFKA_PORT=$$(($(KAFKA_PORT) + i*$(KAFKA_PORT_STEP))) KAFKA_SASL_PORT=$$(($(KAFKA_SASL_PORT) + i*$(KAFKA_PORT_STEP))) \
		  KAFKA_SSL_PORT=$$(($(KAFKA_SSL_PORT) + i*$(KAFKA_PORT_STEP))) \
		  KAFKA_SH='$(KAFKA_SH)' KAFKA_REPO_ROOT='$(KAFKA_REPO_ROOT)' KAFKA_GO='$(KAFKA_GO)' \
		  KAFKA_GO_TEST_FLAGS='$(KAFKA_GO_TEST_FLAGS)' KAFKA_TEST_RUN='$(KAFKA_TEST_RUN)' \
		  KAFKA_CLUSTER_RUN='$(KAFKA_CLUSTER_RUN)' KAFKA_GO_PKGS='$(KAFKA_GO_PKGS)' \
		  $(KAFKA_MK_DIR)/test-version.sh $$r > "$$out/$$r.log" 2>&1; echo $$? > "$$out/$$r.rc" ) & \
		i=$$((i + 1)); \
	done; \
	echo "=== test-kafka: testing$$runs at once (their output follows when all are done)"; \
	wait; \
	for r in $$runs; do \
		cat "$$out/$$r.log"; \
		[ "$$(cat "$$out/$$r.rc" 2>/dev/null)" = 0 ] || failed="$$failed $$r"; \
	done; \
	[ -z "$$stop" ] || exit 130; \
	if [ -n "$$failed" ]; then echo "=== test-kafka: FAILED for:$$failed"; exit 1; fi; \
	echo "=== test-kafka: passed for$$runs"

.DEFAULT_GOAL := $(KAFKA_MK_SAVED_DEFAULT_GOAL)
