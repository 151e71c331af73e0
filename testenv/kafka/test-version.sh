#!/usr/bin/env bash
# test-version.sh — one broker version's share of `make test-kafka`: bring a
# single-node broker of VERSION up on the ports in the environment
# (KAFKA_PORT, KAFKA_SASL_PORT, KAFKA_SSL_PORT), run the kafka-tagged Go tests
# against it, print the broker log's tail if they fail, and always bring it
# down. With --cluster, a 3-broker cluster of VERSION on those ports and the
# tests named KAFKA_CLUSTER_RUN instead. kafka.mk runs one of these per
# version and cluster at once, each on its own ports.
#
#   test-version.sh [--cluster] VERSION
#
# Environment (kafka.mk sets it): KAFKA_SH, KAFKA_REPO_ROOT, KAFKA_GO,
# KAFKA_GO_TEST_FLAGS (words), KAFKA_TEST_RUN, KAFKA_CLUSTER_RUN, KAFKA_GO_PKGS
# (words). Exit status 0 when the broker came up, the tests passed and it went
# down.
set -uo pipefail
env_ports=(KAFKA_PORT="$KAFKA_PORT" KAFKA_SASL_PORT="$KAFKA_SASL_PORT" KAFKA_SSL_PORT="$KAFKA_SSL_PORT")
stop=""
trap 'stop=1' INT TERM

if [ "$1" = --cluster ]; then
	v=$2
	trap 'env "${env_ports[@]}" "$KAFKA_SH" cluster-down >/dev/null 2>&1 || true' EXIT
	echo "=== test-kafka: Apache Kafka $v, 3-broker cluster (127.0.0.1:$KAFKA_PORT, :$KAFKA_SASL_PORT, :$KAFKA_SSL_PORT)"
	failed=0
	t0=$(date +%s)
	if env "${env_ports[@]}" "$KAFKA_SH" cluster-up "$v"; then
		t1=$(date +%s)
		# shellcheck disable=SC2086 # the flags and packages are lists of words
		if [ -z "$stop" ] && (cd "$KAFKA_REPO_ROOT" &&
			TICKSTREAM_KAFKA_CLUSTER_BROKERS=127.0.0.1:$KAFKA_PORT,127.0.0.1:$KAFKA_SASL_PORT,127.0.0.1:$KAFKA_SSL_PORT \
			TICKSTREAM_KAFKA_VERSION=$v \
			$KAFKA_GO test $KAFKA_GO_TEST_FLAGS -run "$KAFKA_CLUSTER_RUN" $KAFKA_GO_PKGS); then :; else
			failed=1
		fi
		t2=$(date +%s)
		echo "=== test-kafka: Kafka $v cluster: up $((t1 - t0))s, test $((t2 - t1))s"
	else
		failed=1
	fi
	env "${env_ports[@]}" "$KAFKA_SH" cluster-down || failed=1
	[ -z "$stop" ] || exit 130
	exit $failed
fi

v=$1
trap 'env "${env_ports[@]}" "$KAFKA_SH" down >/dev/null 2>&1 || true' EXIT

echo "=== test-kafka: Apache Kafka $v (PLAINTEXT 127.0.0.1:$KAFKA_PORT, SASL 127.0.0.1:$KAFKA_SASL_PORT, SSL 127.0.0.1:$KAFKA_SSL_PORT)"
failed=0
t0=$(date +%s)
if env "${env_ports[@]}" "$KAFKA_SH" up "$v"; then
	t1=$(date +%s)
	# shellcheck disable=SC2086 # the flags and packages are lists of words
	if [ -z "$stop" ] && (cd "$KAFKA_REPO_ROOT" &&
		TICKSTREAM_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT \
		TICKSTREAM_KAFKA_SASL_BROKERS=127.0.0.1:$KAFKA_SASL_PORT \
		TICKSTREAM_KAFKA_SSL_BROKERS=127.0.0.1:$KAFKA_SSL_PORT \
		TICKSTREAM_KAFKA_TLS_DIR=$(env "${env_ports[@]}" "$KAFKA_SH" tls-dir) \
		TICKSTREAM_KAFKA_VERSION=$v \
		$KAFKA_GO test $KAFKA_GO_TEST_FLAGS -run "$KAFKA_TEST_RUN" -skip "$KAFKA_CLUSTER_RUN" $KAFKA_GO_PKGS); then :; else
		failed=1
		echo "=== test-kafka: tests FAILED against Kafka $v; broker log tail:"
		env "${env_ports[@]}" "$KAFKA_SH" logs "$v" 2>/dev/null | tail -n 40
	fi
	t2=$(date +%s)
else
	failed=1
	t1=$(date +%s)
	t2=$t1
fi
env "${env_ports[@]}" "$KAFKA_SH" down || failed=1
t3=$(date +%s)
echo "=== test-kafka: Kafka $v: up $((t1 - t0))s, test $((t2 - t1))s, down $((t3 - t2))s"
[ -z "$stop" ] || exit 130
exit $failed
