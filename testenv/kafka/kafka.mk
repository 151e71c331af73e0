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
# test-kafka brings each broker version up in turn, runs the Go tests of the
# kafka-tagged files against it (KAFKA_TEST_RUN), and always brings it down; for the versions in
# KAFKA_CLUSTER_VERSIONS (default: the newest; empty for none) it then brings a
# 3-broker cluster up on the same ports (kafka.sh cluster-up) and runs the tests
# named TestKafkaCluster* against it. It fails if any version failed.

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

# One shell for the whole loop so that the EXIT trap can always stop the
# broker, also on failure or interrupt.
test-kafka:
	@failed=""; \
	trap '$(KAFKA_SH_ENV) $(KAFKA_SH) down >/dev/null 2>&1 || true; $(KAFKA_SH_ENV) $(KAFKA_SH) cluster-down >/dev/null 2>&1 || true' EXIT; \
	trap 'stop=1' INT TERM; stop=""; \
	for v in $(KAFKA_VERSIONS); do \
		[ -z "$$stop" ] || exit 130; \
		echo "=== test-kafka: Apache Kafka $$v (PLAINTEXT 127.0.0.1:$(KAFKA_PORT), SASL 127.0.0.1:$(KAFKA_SASL_PORT), SSL 127.0.0.1:$(KAFKA_SSL_PORT))"; \
		t0=$$(date +%s); \
		if $(KAFKA_SH_ENV) $(KAFKA_SH) up $$v; then \
			t1=$$(date +%s); \
			if [ -z "$$stop" ] && ( cd $(KAFKA_REPO_ROOT) && \
				TICKSTREAM_KAFKA_BROKERS=127.0.0.1:$(KAFKA_PORT) \
				TICKSTREAM_KAFKA_SASL_BROKERS=127.0.0.1:$(KAFKA_SASL_PORT) \
				TICKSTREAM_KAFKA_SSL_BROKERS=127.0.0.1:$(KAFKA_SSL_PORT) \
				TICKSTREAM_KAFKA_TLS_DIR=$$($(KAFKA_SH_ENV) $(KAFKA_SH) tls-dir) \
				TICKSTREAM_KAFKA_VERSION=$$v \
				$(KAFKA_GO) test $(KAFKA_GO_TEST_FLAGS) -run '$(KAFKA_TEST_RUN)' -skip '$(KAFKA_CLUSTER_RUN)' $(KAFKA_GO_PKGS) ); then :; else \
				failed="$$failed $$v"; \
				echo "=== test-kafka: tests FAILED against Kafka $$v; broker log tail:"; \
				$(KAFKA_SH_ENV) $(KAFKA_SH) logs $$v 2>/dev/null | tail -n 40; \
			fi; \
			t2=$$(date +%s); \
		else \
			failed="$$failed $$v"; t1=$$(date +%s); t2=$$t1; \
		fi; \
		$(KAFKA_SH_ENV) $(KAFKA_SH) down || failed="$$failed $$v(down)"; \
		t3=$$(date +%s); \
		echo "=== test-kafka: Kafka $$v: up $$((t1-t0))s, test $$((t2-t1))s, down $$((t3-t2))s"; \
		if [ -z "$$stop" ] && echo " $(KAFKA_CLUSTER_VERSIONS) " | grep -q " $$v "; then \
			echo "=== test-kafka: Apache Kafka $$v, 3-broker cluster (127.0.0.1:$(KAFKA_PORT), :$(KAFKA_SASL_PORT), :$(KAFKA_SSL_PORT))"; \
			if $(KAFKA_SH_ENV) $(KAFKA_SH) cluster-up $$v; then \
				t4=$$(date +%s); \
				if ( cd $(KAFKA_REPO_ROOT) && \
					TICKSTREAM_KAFKA_CLUSTER_BROKERS=127.0.0.1:$(KAFKA_PORT),127.0.0.1:$(KAFKA_SASL_PORT),127.0.0.1:$(KAFKA_SSL_PORT) \
					TICKSTREAM_KAFKA_VERSION=$$v \
					$(KAFKA_GO) test $(KAFKA_GO_TEST_FLAGS) -run '$(KAFKA_CLUSTER_RUN)' $(KAFKA_GO_PKGS) ); then :; else \
					failed="$$failed $$v(cluster)"; \
				fi; \
				t5=$$(date +%s); \
				echo "=== test-kafka: Kafka $$v cluster: up $$((t4-t3))s, test $$((t5-t4))s"; \
			else \
				failed="$$failed $$v(cluster-up)"; \
			fi; \
			$(KAFKA_SH_ENV) $(KAFKA_SH) cluster-down || failed="$$failed $$v(cluster-down)"; \
		fi; \
	done; \
	[ -z "$$stop" ] || exit 130; \
	if [ -n "$$failed" ]; then echo "=== test-kafka: FAILED for:$$failed"; exit 1; fi; \
	echo "=== test-kafka: passed for $(KAFKA_VERSIONS)"

.DEFAULT_GOAL := $(KAFKA_MK_SAVED_DEFAULT_GOAL)
