// Command tickstream is a live market-data streaming server and its tools:
//
//	tickstream serve     run the server (embedded broker and simulator by default)
//	tickstream token     mint a client token (JWT), or make a new HS256 secret
//	tickstream produce   feed a Kafka topic with the simulator or a recorded file
//	tickstream watch     a live terminal table of some symbols
//	tickstream bench     the load benchmark
//
// Run `tickstream COMMAND --help` for the flags of each.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the server (embedded broker and market simulator unless --brokers is given)", runServe},
		{"token", "mint a client token (JWT) for a server's --jwt-secret or key, or make a new secret", runToken},
		{"produce", "feed a Kafka topic with the market simulator or replay a JSONL/CSV file", runProduce},
		{"watch", "show a live terminal table of some symbols", runWatch},
		{"bench", "load-test a server: latency, throughput and ordering under many connections", runBench},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tickstream COMMAND [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'tickstream COMMAND --help' for the flags of a command, 'tickstream --version' for the build.")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a subcommand and turns its error into an exit code: 0,
// 1 for a failure, 2 for a bad command line. Help goes to stdout, errors to
// stderr, each in one line followed, for a bad command line, by where to
// read more.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			return run(ctx, []string{args[1], "--help"}, stdout, stderr)
		}
		usage(stdout)
		return 0
	case "-version", "--version", "version":
		fmt.Fprintln(stdout, "tickstream "+buildVersion())
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var ue *usageError
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "tickstream %s: %v\nsee 'tickstream %s --help'\n", c.name, err, c.name)
			return 2
		default:
			fmt.Fprintf(stderr, "tickstream %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "tickstream: unknown command %q\nsee 'tickstream --help'\n", args[0])
	return 2
}
