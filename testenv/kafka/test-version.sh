#!/usr/bin/env bash
# test-version.sh — one run of `make test-kafka`: bring a single-node broker
# of VERSION up on the ports in the environment (KAFKA_PORT, KAFKA_SASL_PORT,
# KAFKA_SSL_PORT) and run the kafka-tagged Go tests against it, or for
# cluster-VERSION a 3-broker cluster on those ports and the tests named
# KAFKA_CLUSTER_RUN; print the broker log's tail if they fail, and always
# bring the broker(s) down. kafka.mk runs one of these per version and
# cluster at once, each on its own ports.
#
#   test-version.sh VERSION | cluster-VERSION
#
# Environment (kafka.mk sets it): KAFKA_SH, KAFKA_REPO_ROOT, KAFKA_GO,
# KAFKA_GO_TEST_FLAGS (words), KAFKA_TEST_RUN, KAFKA_CLUSTER_RUN, KAFKA_GO_PKGS
# (words). Exit status 0 when the broker came up, the tests passed and it went
# down.
set -uo pipefail
ports=(KAFKA_PORT="$KAFKA_PORT" KAFKA_SASL_PORT="$KAFKA_SASL_PORT" KAFKA_SSL_PORT="$KAFKA_SSL_PORT")
if [ "${1#cluster-}" != "$1" ]; then
	v=${1#cluster-} up=cluster-up down=cluster-down what="Apache Kafka $v, 3-broker cluster"
	select=(-run "$KAFKA_CLUSTER_RUN")
	testenv=(TICKSTREAM_KAFKA_CLUSTER_BROKERS="127.0.0.1:$KAFKA_PORT,127.0.0.1:$KAFKA_SASL_PORT,127.0.0.1:$KAFKA_SSL_PORT")
else
	v=$1 up=up down=down what="Apache Kafka $v"
	select=(-run "$KAFKA_TEST_RUN" -skip "$KAFKA_CLUSTER_RUN")
	testenv=(TICKSTREAM_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
		TICKSTREAM_KAFKA_SASL_BROKERS="127.0.0.1:$KAFKA_SASL_PORT"
		TICKSTREAM_KAFKA_SSL_BROKERS="127.0.0.1:$KAFKA_SSL_PORT"
		TICKSTREAM_KAFKA_TLS_DIR="$(env "${ports[@]}" "$KAFKA_SH" tls-dir)")
fi
stop=""
trap 'stop=1' INT TERM
trap 'env "${ports[@]}" "$KAFKA_SH" $down >/dev/null 2>&1 || true' EXIT

echo "=== test-kafka: $what (127.0.0.1:$KAFKA_PORT, :$KAFKA_SASL_PORT, :$KAFKA_SSL_PORT)"
failed=0
t0=$(date +%s)
if env "${ports[@]}" "$KAFKA_SH" $up "$v"; then
	t1=$(date +%s)
	# shellcheck disable=SC2086 # the flags and packages are lists of words
	if [ -z "$stop" ] && (cd "$KAFKA_REPO_ROOT" &&
		env "${testenv[@]}" TICKSTREAM_KAFKA_VERSION="$v" \
			$KAFKA_GO test $KAFKA_GO_TEST_FLAGS "${select[@]}" $KAFKA_GO_PKGS); then :; else
		failed=1
		echo "=== test-kafka: tests FAILED against $what; broker log tail:"
		env "${ports[@]}" "$KAFKA_SH" logs "$v" 2>/dev/null | tail -n 40
	fi
else
	failed=1
	t1=$(date +%s)
fi
t2=$(date +%s)
env "${ports[@]}" "$KAFKA_SH" $down || failed=1
echo "=== test-kafka: $what: up $((t1 - t0))s, test $((t2 - t1))s, down $(($(date +%s) - t2))s"
[ -z "$stop" ] || exit 130
exit $failed
