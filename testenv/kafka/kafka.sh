#!/usr/bin/env bash
# kafka.sh — a real, single-node Apache Kafka broker (KRaft, broker+controller)
# for tickstream's integration tests, on 127.0.0.1 only.
#
#   kafka.sh up     [VERSION]   fetch jars if missing, format, start, wait until it answers
#   kafka.sh down   [VERSION]   stop (TERM, then KILL) and delete the data dir
#   kafka.sh stop               stop the broker but keep its data (an outage)
#   kafka.sh kill               SIGKILL the broker's JVM, keeping its data (a crash)
#   kafka.sh start              start a stopped broker again on the same data
#   kafka.sh status [VERSION]   exit 0 if running, 3 if not
#   kafka.sh logs   [VERSION]   print the broker log (all of it; pipe through tail)
#   kafka.sh versions           print the default broker versions (newest 3.9.x, newest 4.x)
#   kafka.sh tls-dir            print the folder of the SSL listener's CA and client certificate
#   kafka.sh fetch  [VERSION]   only fetch the jars
#
#   kafka.sh cluster-up   [VERSION]  a 3-broker cluster instead (see below)
#   kafka.sh cluster-restart N       stop broker N (1-3) gracefully and start it again
#   kafka.sh cluster-down            stop the cluster and delete its data
#
# The cluster is one KRaft controller on KAFKA_CONTROLLER_PORT and three brokers
# (node ids 1-3) listening in PLAINTEXT on KAFKA_PORT, KAFKA_SASL_PORT and
# KAFKA_SSL_PORT: the single broker's ports, so it never runs beside it. Topics
# get 3 replicas and min.insync.replicas 2 by default, so that one broker may be
# restarted at a time while producers write with acks=all.
#
# VERSION is a full version (3.9.2), or "3" / "3.9" / "4" for the defaults below;
# without one, $KAFKA_VERSION, else the newest 4.x default.
#
# Jars come from Maven Central through `mvn` (pom.xml beside this script) and are
# cached in testenv/kafka/.work/<version>/libs. Broker logs: .work/logs/.
#
# Environment:
#   KAFKA_PORT             PLAINTEXT listener            (default 9092)
#   KAFKA_SASL_PORT        SASL_PLAINTEXT listener        (default 9094)
#                          mechanisms SCRAM-SHA-256, SCRAM-SHA-512, PLAIN;
#                          user "tickstream", password "tickstream-secret"
#   KAFKA_SSL_PORT         SSL listener, client certificate required (default 9095);
#                          a fresh CA, broker and client certificate are made at each
#                          `up` in $(kafka.sh tls-dir): ca.pem, client.pem, client-key.pem
#   KAFKA_CONTROLLER_PORT  KRaft controller listener      (default KAFKA_PORT+1)
#   KAFKA_HEAP_OPTS        JVM heap                        (default -Xms256m -Xmx512m)
#   KAFKA_JVM_OPTS         more JVM flags (default -XX:TieredStopAtLevel=1: less JIT
#                          CPU on a small shared machine; set to "" for full C2)
#   KAFKA_START_TIMEOUT    seconds to wait for readiness   (default 90)
#   KAFKA_STOP_TIMEOUT     seconds between TERM and KILL   (default 20)
#   KAFKA_MVN_FLAGS        extra flags for mvn, e.g. "-o" or "-Dmaven.repo.local=..."
#   KAFKA_WORK_DIR         cache/state dir                 (default <this dir>/.work)
#   JAVA                   java binary                     (default: java on PATH)
set -euo pipefail
# Under pipefail, `cmd | grep -q` fails when grep quits at its first match and cmd then dies of
# SIGPIPE: this script counts with `grep -c … >/dev/null` instead, which reads all its input.

# The defaults: the newest 3.9.x and the newest 4.x on Maven Central when this
# was written (checked with Maven's version-range resolution against
# org.apache.kafka:kafka_2.13 metadata: 3.9.0 3.9.1 3.9.2 ... 4.3.1 4.4.0).
readonly KAFKA_DEFAULT_3=3.9.2
readonly KAFKA_DEFAULT_4=4.4.0

readonly SCRAM_USER=tickstream
readonly SCRAM_PASS=tickstream-secret

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
readonly HERE
WORK="${KAFKA_WORK_DIR:-$HERE/.work}"
PORT="${KAFKA_PORT:-9092}"
[[ "$PORT" =~ ^[0-9]{1,5}$ ]] || die "bad KAFKA_PORT '$PORT'"
SASL_PORT="${KAFKA_SASL_PORT:-9094}"
SSL_PORT="${KAFKA_SSL_PORT:-9095}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
JVM_OPTS="${KAFKA_JVM_OPTS--XX:TieredStopAtLevel=1}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-20}"
JAVA="${JAVA:-java}"

# One broker per PLAINTEXT port: its state lives here.
RUN="$WORK/run/$PORT"
CRUN="$WORK/run/$PORT-cluster"
TLS="$RUN/tls"
LOGS="$WORK/logs"

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
	exit 2
}

resolve_version() {
	local v="${1:-${KAFKA_VERSION:-$KAFKA_DEFAULT_4}}"
	case "$v" in
		3 | 3.9 | 3.9.x) v=$KAFKA_DEFAULT_3 ;;
		4 | 4.x) v=$KAFKA_DEFAULT_4 ;;
	esac
	[[ "$v" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "bad Kafka version '$v' (want e.g. $KAFKA_DEFAULT_3 or $KAFKA_DEFAULT_4)"
	local major=${v%%.*} minor=${v#*.}
	minor=${minor%%.*}
	if ((major < 3 || (major == 3 && minor < 5))); then
		die "Kafka $v is not supported here (KRaft with SCRAM at format time needs 3.5+)"
	fi
	VERSION=$v
	MAJOR=$major
	LIBS="$WORK/$VERSION/libs"
}

check_ports() {
	local p
	for p in "$PORT" "$SASL_PORT" "$SSL_PORT" "$CONTROLLER_PORT"; do
		if ! [[ "$p" =~ ^[0-9]+$ ]] || ((p < 1 || p > 65535)); then die "bad port '$p'"; fi
	done
	if [[ $(printf '%s\n' "$PORT" "$SASL_PORT" "$SSL_PORT" "$CONTROLLER_PORT" | sort -u | wc -l) -ne 4 ]]; then
		die "ports must differ: KAFKA_PORT=$PORT KAFKA_SASL_PORT=$SASL_PORT KAFKA_SSL_PORT=$SSL_PORT KAFKA_CONTROLLER_PORT=$CONTROLLER_PORT"
	fi
}

port_open() { # port -> 0 if something accepts TCP connections on 127.0.0.1:port
	timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# ApiVersions v0 round trip on 127.0.0.1:port: succeeds only when a Kafka broker
# answers the request with correlation id 1 and error_code 0.
api_versions_ok() {
	local hex
	# shellcheck disable=SC2016 # $1 is expanded by the inner bash
	# size=12 | api_key=18 | api_version=0 | correlation_id=1 | client_id="ts"
	hex=$(timeout 3 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf "\x00\x00\x00\x0c\x00\x12\x00\x00\x00\x00\x00\x01\x00\x02ts" >&3
		head -c 10 <&3 | od -An -tx1 | tr -d " \n"
	' _ "$1" 2>/dev/null) || return 1
	# size(4, any) | correlation_id=1 | error_code=0
	[[ ${#hex} -eq 20 && ${hex:8:8} == 00000001 && ${hex:16:4} == 0000 ]]
}

# pid of the broker recorded for this port, if that process is still our broker.
running_pid() {
	local pid
	[[ -f "$RUN/pid" ]] || return 1
	pid=$(<"$RUN/pid")
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	# Guard against a recycled pid: it must be a java running our config.
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -cF -- "$RUN/server.properties" >/dev/null || return 1
	printf '%s\n' "$pid"
}

fetch() {
	if [[ -f "$LIBS/.complete" ]]; then
		return 0
	fi
	command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven) to fetch Kafka $VERSION"
	log "fetching Apache Kafka $VERSION jars from Maven Central into ${LIBS#"$HERE"/} ..."
	mkdir -p "$WORK/$VERSION"
	local tmp="$WORK/$VERSION/libs.tmp.$$"
	rm -rf "$tmp"
	# shellcheck disable=SC2086 # KAFKA_MVN_FLAGS is a list of flags
	if ! mvn -B -q ${KAFKA_MVN_FLAGS:-} -f "$HERE/pom.xml" \
		org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
		-Dkafka.version="$VERSION" -Dkafka.line="$MAJOR" \
		-DincludeScope=runtime -DoutputDirectory="$tmp" >"$WORK/$VERSION/mvn.log" 2>&1; then
		tail -n 40 "$WORK/$VERSION/mvn.log" >&2
		rm -rf "$tmp"
		die "mvn could not resolve org.apache.kafka:kafka_2.13:$VERSION (full output: $WORK/$VERSION/mvn.log)"
	fi
	[[ -n "$(compgen -G "$tmp/kafka_2.13-$VERSION.jar")" ]] || die "kafka_2.13-$VERSION.jar missing after mvn"
	touch "$tmp/.complete"
	rm -rf "$LIBS"
	mv "$tmp" "$LIBS"
	log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars"
}

write_config() { # datadir
	local data=$1
	local jaas_scram='org.apache.kafka.common.security.scram.ScramLoginModule required;'
	cat >"$RUN/server.properties" <<EOF
# Generated by testenv/kafka/kafka.sh for Kafka $VERSION — single node, loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$PORT,SASL_PLAINTEXT://127.0.0.1:$SASL_PORT,SSL://127.0.0.1:$SSL_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT,SASL_PLAINTEXT://127.0.0.1:$SASL_PORT,SSL://127.0.0.1:$SSL_PORT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL
inter.broker.listener.name=PLAINTEXT

sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN
listener.name.sasl_plaintext.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=$jaas_scram
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=$jaas_scram
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SCRAM_USER="$SCRAM_PASS";

listener.name.ssl.ssl.keystore.type=PEM
listener.name.ssl.ssl.keystore.location=$TLS/broker-keystore.pem
listener.name.ssl.ssl.truststore.type=PEM
listener.name.ssl.ssl.truststore.location=$TLS/ca.pem
listener.name.ssl.ssl.client.auth=required

EOF
	storage_config "$data" 1 1 >>"$RUN/server.properties"
	write_log_config "$RUN"
}

# storage_config datadir replicas min_isr: the topic, replication and tuning settings every
# broker of this script has: the single node's (1, 1) and the cluster's (3, 2).
storage_config() {
	cat <<EOF
log.dirs=$1
auto.create.topics.enable=true
delete.topic.enable=true
num.partitions=4
default.replication.factor=$2
min.insync.replicas=$3
offsets.topic.replication.factor=$2
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=$2
transaction.state.log.min.isr=$3
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=$2
share.coordinator.state.topic.min.isr=$3
group.initial.rebalance.delay.ms=0

# Small and quick: these brokers live for one test run on a shared 2-core machine.
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=2
log.segment.bytes=67108864
# Retention runs every second, so that tests can make records expire (ingest's truncation tests).
log.retention.check.interval.ms=1000
EOF
}

write_log_config() { # dir
	if ((MAJOR >= 4)); then
		cat >"$1/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = OUT
logger.statechange.name = state.change.logger
logger.statechange.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
EOF
	else
		cat >"$1/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
EOF
	fi
}

# 16 random bytes, base64url without padding, like `kafka-storage random-uuid`; and like it,
# never one that starts with "-", which kafka-storage's argument parser takes for an option
# ("argument --cluster-id/-t: expected one argument", one `up` in 64).
random_cluster_id() {
	local id
	while id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n') && [[ $id == -* ]]; do :; done
	printf '%s' "$id"
}

make_certs() { # a CA, and broker and client certificates it signs, for the SSL listener
	rm -rf "$TLS"
	mkdir -p "$TLS"
	local -a ossl=(openssl req -newkey rsa:2048 -nodes -sha256)
	(
		cd "$TLS"
		openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/CN=tickstream test CA" \
			-keyout ca-key.pem -out ca.pem
		"${ossl[@]}" -subj "/CN=127.0.0.1" -keyout broker-key.pem -out broker.csr
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >broker.ext
		openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -sha256 \
			-extfile broker.ext -out broker.pem
		"${ossl[@]}" -subj "/CN=tickstream-client" -keyout client-key.pem -out client.csr
		openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -sha256 \
			-out client.pem
		# Kafka's PEM keystore: the unencrypted PKCS#8 key, then the certificate chain.
		openssl pkcs8 -topk8 -nocrypt -in broker-key.pem >broker-keystore.pem
		cat broker.pem ca.pem >>broker-keystore.pem
	) >"$RUN/certs.log" 2>&1 || { cat "$RUN/certs.log" >&2; die "making the test certificates failed"; }
}

cleanup_run() { # remove state and data of a broker that is not running
	local data=""
	[[ -f "$RUN/datadir" ]] && data=$(<"$RUN/datadir")
	if [[ -n "$data" && -d "$data" && "$data" == */tickstream-kafka.* ]]; then
		rm -rf -- "$data"
	fi
	rm -f "$RUN/pid" "$RUN/datadir" "$RUN/version"
}

# java_cmd array-name [dir]: fill the named array with the JVM command line
# of the Kafka tools, logging as configured in dir (default $RUN).
java_cmd() {
	local -n out=$1
	local dir=${2:-$RUN}
	local logopt=-Dlog4j.configuration="file:$dir/log4j.properties"
	if ((MAJOR >= 4)); then logopt=-Dlog4j2.configurationFile="$dir/log4j2.properties"; fi
	# shellcheck disable=SC2206 # JVM_OPTS is a list of JVM flags
	out=("$JAVA" -cp "$LIBS/*" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
		-Djava.awt.headless=true -Dkafka.logs.dir="$LOGS" $JVM_OPTS "$logopt")
}

cmd_up() {
	check_ports
	mkdir -p "$RUN" "$LOGS"
	local pid
	if pid=$(running_pid); then
		local running_version
		running_version=$(cat "$RUN/version" 2>/dev/null || echo '?')
		[[ "$running_version" == "$VERSION" ]] || die "Kafka $running_version is already running on port $PORT (pid $pid): run '$0 down' first"
		api_versions_ok "$PORT" || die "Kafka $VERSION (pid $pid) is running on port $PORT but does not answer"
		log "Kafka $VERSION already running on 127.0.0.1:$PORT (pid $pid)"
		return 0
	fi
	cleanup_run # stale state from a broker that died
	local p
	for p in "$PORT" "$SASL_PORT" "$SSL_PORT" "$CONTROLLER_PORT"; do
		! port_open "$p" || die "127.0.0.1:$p is already in use by another process (set KAFKA_PORT / KAFKA_SASL_PORT / KAFKA_SSL_PORT / KAFKA_CONTROLLER_PORT)"
	done

	command -v "$JAVA" >/dev/null || die "java not found (need Java 17+)"
	fetch

	local data
	data=$(mktemp -d "${TMPDIR:-/tmp}/tickstream-kafka.XXXXXXXX")
	printf '%s\n' "$data" >"$RUN/datadir"
	printf '%s\n' "$VERSION" >"$RUN/version"
	make_certs
	write_config "$data"

	local logfile="$LOGS/kafka-$VERSION-$PORT.log"
	if [[ -f "$logfile" ]]; then mv -f "$logfile" "$logfile.prev"; fi
	local -a jvm
	java_cmd jvm

	log "formatting $data (Kafka $VERSION, SCRAM user $SCRAM_USER) ..."
	if ! "${jvm[@]}" -Xmx256m kafka.tools.StorageTool format \
		-t "$(random_cluster_id)" -c "$RUN/server.properties" \
		--add-scram "SCRAM-SHA-256=[name=$SCRAM_USER,password=$SCRAM_PASS]" \
		--add-scram "SCRAM-SHA-512=[name=$SCRAM_USER,password=$SCRAM_PASS]" \
		</dev/null >"$logfile" 2>&1 9>&-; then
		cat "$logfile" >&2
		cleanup_run
		die "formatting storage failed (log: $logfile)"
	fi

	launch "$logfile" "${jvm[@]}"
}

# launch logfile java-command...: start the broker formatted in $RUN and wait
# until it answers.
launch() {
	local logfile=$1 pid from
	shift
	# Only this start's lines count: a restart appends to the same log.
	from=$(stat -c %s "$logfile" 2>/dev/null || echo 0)
	log "starting Kafka $VERSION: PLAINTEXT 127.0.0.1:$PORT, SASL_PLAINTEXT 127.0.0.1:$SASL_PORT, SSL 127.0.0.1:$SSL_PORT, controller 127.0.0.1:$CONTROLLER_PORT"
	# shellcheck disable=SC2086 # HEAP_OPTS is a list of JVM flags
	"$@" $HEAP_OPTS kafka.Kafka "$RUN/server.properties" </dev/null >>"$logfile" 2>&1 9>&- &
	pid=$!
	printf '%s\n' "$pid" >"$RUN/pid"

	local deadline=$((SECONDS + START_TIMEOUT))
	until tail -c +$((from + 1)) "$logfile" | grep -c 'Kafka Server started' >/dev/null && api_versions_ok "$PORT" && port_open "$SASL_PORT" && port_open "$SSL_PORT"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "broker exited during startup; last log lines:"
			tail -n 60 "$logfile" >&2
			cleanup_run
			die "Kafka $VERSION failed to start (log: $logfile)"
		fi
		if ((SECONDS >= deadline)); then
			log "broker not ready after ${START_TIMEOUT}s; last log lines:"
			tail -n 60 "$logfile" >&2
			stop_pid "$pid"
			cleanup_run
			die "Kafka $VERSION did not become ready in ${START_TIMEOUT}s (log: $logfile)"
		fi
		sleep 0.5
	done
	log "Kafka $VERSION ready on 127.0.0.1:$PORT (pid $pid, log $logfile)"
}

stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < STOP_TIMEOUT * 5; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.2
	done
	log "pid $pid still alive ${STOP_TIMEOUT}s after TERM: KILL"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	die "could not stop pid $pid"
}

cmd_down() {
	local pid
	if pid=$(running_pid); then
		log "stopping Kafka $(cat "$RUN/version" 2>/dev/null || true) on port $PORT (pid $pid)"
		stop_pid "$pid"
	fi
	cleanup_run
}

# cmd_stop stops the broker but keeps its data and configuration, so that
# cmd_start brings the same cluster back: an outage for tests.
cmd_stop() {
	local pid
	pid=$(running_pid) || die "no Kafka running on port $PORT"
	log "stopping Kafka $(cat "$RUN/version" 2>/dev/null || true) on port $PORT (pid $pid), keeping its data"
	stop_pid "$pid"
	rm -f "$RUN/pid"
}

# cmd_kill kills the broker's JVM with SIGKILL, as a crash or the OOM killer
# would: no controlled shutdown, no flushed segments. The data stays, and
# cmd_start brings the same cluster back (recovering its logs).
cmd_kill() {
	local pid i
	pid=$(running_pid) || die "no Kafka running on port $PORT"
	log "killing Kafka $(cat "$RUN/version" 2>/dev/null || true) on port $PORT (pid $pid) with SIGKILL, keeping its data"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	! kill -0 "$pid" 2>/dev/null || die "pid $pid survived SIGKILL"
	rm -f "$RUN/pid"
}

cmd_start() {
	if running_pid >/dev/null; then
		log "Kafka already running on 127.0.0.1:$PORT"
		return 0
	fi
	[[ -f "$RUN/datadir" && -f "$RUN/version" && -f "$RUN/server.properties" ]] ||
		die "no stopped broker on port $PORT to start again: use '$0 up'"
	resolve_version "$(<"$RUN/version")"
	local p
	for p in "$PORT" "$SASL_PORT" "$SSL_PORT" "$CONTROLLER_PORT"; do
		! port_open "$p" || die "127.0.0.1:$p is already in use by another process"
	done
	local -a jvm
	java_cmd jvm
	launch "$LOGS/kafka-$VERSION-$PORT.log" "${jvm[@]}"
}

cmd_status() {
	local pid
	if pid=$(running_pid); then
		local v
		v=$(cat "$RUN/version" 2>/dev/null || echo '?')
		if api_versions_ok "$PORT"; then
			echo "running: Kafka $v pid $pid PLAINTEXT=127.0.0.1:$PORT SASL_PLAINTEXT=127.0.0.1:$SASL_PORT data=$(cat "$RUN/datadir" 2>/dev/null)"
			return 0
		fi
		echo "unhealthy: Kafka $v pid $pid does not answer on 127.0.0.1:$PORT"
		return 1
	fi
	echo "not running (port $PORT)"
	return 3
}

cmd_logs() {
	local f="$LOGS/kafka-$VERSION-$PORT.log"
	if [[ $# -eq 0 && -f "$RUN/version" ]]; then
		f="$LOGS/kafka-$(<"$RUN/version")-$PORT.log"
	fi
	[[ -f "$f" ]] || die "no log at $f"
	cat "$f"
}

# ---- the 3-broker cluster ----

cluster_node_port() { # broker id -> its PLAINTEXT port
	case $1 in
		1) echo "$PORT" ;;
		2) echo "$SASL_PORT" ;;
		3) echo "$SSL_PORT" ;;
		*) die "no broker $1 in the cluster (1-3)" ;;
	esac
}

cluster_node_dir() { # node id (100 is the controller)
	echo "$CRUN/node-$1"
}

cluster_pid() { # node id -> its pid, if it runs
	local dir pid
	dir=$(cluster_node_dir "$1")
	[[ -f "$dir/pid" ]] || return 1
	pid=$(<"$dir/pid")
	[[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -cF -- "$dir/server.properties" >/dev/null || return 1
	printf '%s\n' "$pid"
}

cluster_node_config() { # node id
	local id=$1 dir port
	dir=$(cluster_node_dir "$id")
	mkdir -p "$dir/data"
	{
		echo "# Generated by testenv/kafka/kafka.sh for Kafka $VERSION — 3-broker cluster, node $id, loopback only."
		echo "node.id=$id"
		echo "controller.quorum.voters=100@127.0.0.1:$CONTROLLER_PORT"
		echo "controller.listener.names=CONTROLLER"
		if ((id == 100)); then
			echo "process.roles=controller"
			echo "listeners=CONTROLLER://127.0.0.1:$CONTROLLER_PORT"
			echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT"
		else
			port=$(cluster_node_port "$id")
			echo "process.roles=broker"
			echo "listeners=PLAINTEXT://127.0.0.1:$port"
			echo "advertised.listeners=PLAINTEXT://127.0.0.1:$port"
			echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
			echo "inter.broker.listener.name=PLAINTEXT"
		fi
		storage_config "$dir/data" 3 2
	} >"$dir/server.properties"
	write_log_config "$dir"
}

# cluster_launch id: start a formatted node and wait until it answers.
cluster_launch() {
	local id=$1 dir logfile pid port from
	dir=$(cluster_node_dir "$id")
	logfile="$LOGS/kafka-$VERSION-$PORT-cluster-$id.log"
	local -a jvm
	java_cmd jvm "$dir"
	from=$(stat -c %s "$logfile" 2>/dev/null || echo 0)
	# shellcheck disable=SC2086 # the heap is a list of JVM flags
	"${jvm[@]}" ${KAFKA_CLUSTER_HEAP_OPTS:--Xms128m -Xmx384m} kafka.Kafka "$dir/server.properties" </dev/null >>"$logfile" 2>&1 9>&- &
	pid=$!
	printf '%s\n' "$pid" >"$dir/pid"
	local deadline=$((SECONDS + START_TIMEOUT))
	while :; do
		if ((id == 100)); then
			port_open "$CONTROLLER_PORT" && break
		else
			port=$(cluster_node_port "$id")
			tail -c +$((from + 1)) "$logfile" | grep -c 'Kafka Server started' >/dev/null && api_versions_ok "$port" && break
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 60 "$logfile" >&2
			die "cluster node $id exited during startup (log: $logfile)"
		fi
		if ((SECONDS >= deadline)); then
			tail -n 60 "$logfile" >&2
			die "cluster node $id not ready after ${START_TIMEOUT}s (log: $logfile)"
		fi
		sleep 0.5
	done
	log "cluster node $id of Kafka $VERSION ready (pid $pid, log $logfile)"
}

cmd_cluster_up() {
	check_ports
	if running_pid >/dev/null; then die "the single broker runs on port $PORT: '$0 down' first"; fi
	if cluster_pid 100 >/dev/null; then die "a cluster already runs on port $PORT: '$0 cluster-down' first"; fi
	local p id cid
	for p in "$PORT" "$SASL_PORT" "$SSL_PORT" "$CONTROLLER_PORT"; do
		! port_open "$p" || die "127.0.0.1:$p is already in use by another process"
	done
	command -v "$JAVA" >/dev/null || die "java not found (need Java 17+)"
	fetch
	rm -rf "$CRUN"
	mkdir -p "$CRUN" "$LOGS"
	printf '%s\n' "$VERSION" >"$CRUN/version"
	cid=$(random_cluster_id)
	local -a jvm
	for id in 100 1 2 3; do
		cluster_node_config "$id"
		java_cmd jvm "$(cluster_node_dir "$id")"
		"${jvm[@]}" -Xmx256m kafka.tools.StorageTool format -t "$cid" -c "$(cluster_node_dir "$id")/server.properties" \
			</dev/null >"$(cluster_node_dir "$id")/format.log" 2>&1 9>&- ||
			{ cat "$(cluster_node_dir "$id")/format.log" >&2; die "formatting cluster node $id failed"; }
	done
	log "starting a Kafka $VERSION cluster: controller 127.0.0.1:$CONTROLLER_PORT, brokers 127.0.0.1:$PORT, :$SASL_PORT and :$SSL_PORT"
	for id in 100 1 2 3; do
		cluster_launch "$id"
	done
}

cmd_cluster_restart() {
	local id=${1:-} pid
	[[ "$id" =~ ^[123]$ ]] || die "cluster-restart wants a broker number, 1 to 3"
	[[ -f "$CRUN/version" ]] || die "no cluster on port $PORT"
	resolve_version "$(<"$CRUN/version")"
	if pid=$(cluster_pid "$id"); then
		log "stopping cluster broker $id (pid $pid)"
		stop_pid "$pid"
	fi
	cluster_launch "$id"
}

cmd_cluster_down() {
	local id pid
	for id in 3 2 1 100; do
		if pid=$(cluster_pid "$id"); then
			log "stopping cluster node $id (pid $pid)"
			stop_pid "$pid"
		fi
	done
	rm -rf "$CRUN"
}

main() {
	[[ $# -ge 1 ]] || usage
	local cmd=$1
	shift
	[[ $# -le 1 ]] || usage
	case "$cmd" in
		versions)
			echo "$KAFKA_DEFAULT_3 $KAFKA_DEFAULT_4"
			return 0
			;;
		tls-dir)
			echo "$TLS"
			return 0
			;;
		-h | --help | help) usage ;;
	esac
	if [[ $cmd == cluster-restart ]]; then resolve_version; else resolve_version "$@"; fi
	mkdir -p "$WORK"
	# Serialize commands on the same port (e.g. make -j, two shells).
	exec 9>"$WORK/.lock-$PORT"
	flock -w 300 9 || die "another kafka.sh holds $WORK/.lock-$PORT"
	case "$cmd" in
		up) cmd_up ;;
		down) cmd_down ;;
		stop) cmd_stop ;;
		kill) cmd_kill ;;
		start) cmd_start ;;
		status) cmd_status ;;
		logs) cmd_logs "$@" ;;
		fetch) fetch ;;
		cluster-up) cmd_cluster_up ;;
		cluster-restart) cmd_cluster_restart "$@" ;;
		cluster-down) cmd_cluster_down ;;
		*) usage ;;
	esac
}

main "$@"
