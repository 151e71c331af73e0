package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

// refusal is a command line that a subcommand must refuse.
type refusal struct {
	name string
	args []string
	err  string // substring of the error
	is   error  // or the error it must be
}

// testRefusals runs every case through run: each must fail as it says and
// print nothing on standard output, except a -h case, whose help goes there
// and must contain usage when set.
func testRefusals(t *testing.T, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error, tests []refusal, usage string) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tt.args, &stdout, &stderr)
			switch {
			case err == nil:
				t.Fatal("no error")
			case tt.is != nil && !errors.Is(err, tt.is):
				t.Errorf("error %v, want %v", err, tt.is)
			case tt.is == nil && !strings.Contains(err.Error(), tt.err):
				t.Errorf("error %q, want one with %q", err, tt.err)
			}
			help := tt.is == flag.ErrHelp
			if !help && stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
			if help && !strings.Contains(stdout.String(), usage) {
				t.Errorf("help %q on stdout has no %q", stdout.String(), usage)
			}
			if help && stderr.Len() != 0 {
				t.Errorf("help wrote %q to stderr, want nothing", stderr.String())
			}
			if strings.Contains(stdout.String(), "panic") {
				t.Errorf("help %q has a panic", stdout.String())
			}
		})
	}
}
