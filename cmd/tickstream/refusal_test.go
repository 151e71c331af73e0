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
// print nothing on standard output; with usage set, the help a -h case
// prints must contain it.
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
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
			if usage != "" && tt.is == flag.ErrHelp && !strings.Contains(stderr.String(), usage) {
				t.Errorf("help %q has no usage line", stderr.String())
			}
		})
	}
}
