// Command tickstream is a live market-data streaming server and its tools:
//
//	tickstream serve     run the server (embedded broker and simulator by default)
//	tickstream produce   feed a Kafka topic with the simulator or a recorded file
//	tickstream watch     a live terminal table of some symbols
//	tickstream bench     the load benchmark
//
// Run `tickstream COMMAND -h` for the flags of each.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the server (embedded broker and market simulator unless --brokers is given)", runServe},
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
	fmt.Fprintln(w, "\nRun 'tickstream COMMAND -h' for the flags of a command.")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a subcommand and turns its error into an exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(stderr, "tickstream %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "tickstream: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// errUsage reports a command line that the flag package already explained.
var errUsage = errors.New("usage")

// parseFlags parses args, then fills every flag not given on the command
// line from the environment variable TICKSTREAM_<NAME> (dashes become
// underscores), so that flags and environment are one source of truth.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		env := envName(f.Name)
		if v, ok := os.LookupEnv(env); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q (--%s): %v", env, v, f.Name, e)
			}
		}
	})
	return err
}

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return "TICKSTREAM_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}
