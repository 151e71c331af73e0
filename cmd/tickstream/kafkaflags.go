package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tickstream/tickstream/ingest"
)

// kafkaDialTimeout bounds one connection to a broker of produce and bench.
const kafkaDialTimeout = 10 * time.Second

// kafkaFlags are the Kafka client settings that serve, produce and bench
// share: the brokers and how to reach them (TLS, SASL), registered under the
// same names with the same help everywhere.
type kafkaFlags struct {
	brokers string
	sec     ingest.Security
}

// register adds --brokers (described by brokersHelp) and the TLS and SASL
// flags to fs.
func (k *kafkaFlags) register(fs *flag.FlagSet, brokersHelp string) {
	fs.StringVar(&k.brokers, "brokers", "", brokersHelp)
	fs.BoolVar(&k.sec.TLS, "tls", false, "connect to Kafka over TLS (implied by --tls-ca and --tls-cert)")
	fs.StringVar(&k.sec.CAFile, "tls-ca", "", "PEM `file` of the CAs of the Kafka brokers' certificates (default: system roots)")
	fs.StringVar(&k.sec.CertFile, "tls-cert", "", "PEM client certificate `file` for Kafka (with --tls-key)")
	fs.StringVar(&k.sec.KeyFile, "tls-key", "", "PEM client key `file` for Kafka")
	fs.StringVar(&k.sec.SASLMechanism, "sasl-mechanism", "", "Kafka SASL `mechanism`: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	fs.StringVar(&k.sec.SASLUser, "sasl-user", "", "Kafka SASL `user`")
	fs.StringVar(&k.sec.SASLPassword, "sasl-password", "", "Kafka SASL `password` (better: the environment variable TICKSTREAM_SASL_PASSWORD)")
}

// secured reports whether a TLS or SASL setting was given.
func (k *kafkaFlags) secured() bool {
	return k.sec != ingest.Security{}
}

// list returns the checked --brokers addresses; none is an error when
// required.
func (k *kafkaFlags) list(required bool) ([]string, error) {
	var out []string
	for _, b := range strings.Split(k.brokers, ",") {
		if b = strings.TrimSpace(b); b == "" {
			continue
		}
		_, port, err := net.SplitHostPort(b)
		if err != nil {
			return nil, fmt.Errorf("--brokers: %q is not host:port", b)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return nil, fmt.Errorf("--brokers: %q has no valid port", b)
		}
		out = append(out, b)
	}
	if len(out) == 0 && required {
		return nil, errors.New("--brokers is required: the Kafka bootstrap host:port,...")
	}
	if len(out) == 0 && k.secured() {
		return nil, errors.New("--tls and --sasl-* apply to --brokers: the embedded broker is plain")
	}
	return out, nil
}

// transport returns a kafka-go Transport with the TLS and SASL settings,
// having read and checked their files; the caller closes its idle
// connections when done.
func (k *kafkaFlags) transport() (*kafka.Transport, error) {
	d, err := k.sec.Dialer(kafkaDialTimeout)
	if err != nil {
		// The settings are flags here, not ingest's fields.
		return nil, errors.New("--tls-* or --sasl-*: " + strings.TrimPrefix(err.Error(), "ingest: "))
	}
	return &kafka.Transport{TLS: d.TLS, SASL: d.SASLMechanism, DialTimeout: kafkaDialTimeout}, nil
}
