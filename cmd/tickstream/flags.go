package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// errUsage matches (errors.Is) every error of a bad command line.
var errUsage = errors.New("bad command line")

// usageError is an error of the command line: an unknown flag, a bad value,
// a stray argument, settings that exclude each other. run prints it with a
// pointer to --help and exits 2.
type usageError struct{ err error }

func (e *usageError) Error() string        { return e.err.Error() }
func (e *usageError) Unwrap() error        { return e.err }
func (e *usageError) Is(target error) bool { return target == errUsage }

// badUsage marks err, when there is one, as an error of the command line.
func badUsage(err error) error {
	var ue *usageError
	if err == nil || errors.Is(err, flag.ErrHelp) || errors.As(err, &ue) {
		return err
	}
	return &usageError{err}
}

// usagef is badUsage(fmt.Errorf(format, args...)).
func usagef(format string, args ...any) error {
	return badUsage(fmt.Errorf(format, args...))
}

// newFlagSet returns the flag set of a command. Parsing prints nothing; on
// -h or --help parseFlags prints help (the text, then the flags) to stdout.
func newFlagSet(name string, stdout io.Writer, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fs.SetOutput(stdout)
		defer fs.SetOutput(io.Discard)
		fmt.Fprint(stdout, help)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, refusing arguments that are not flags (the flag
// package stops at the first one and would silently ignore every flag after
// it), then fills every flag not given on the command line from the
// environment variable TICKSTREAM_<NAME> (dashes become underscores), so that
// flags and environment are one source of truth.
func parseFlags(fs *flag.FlagSet, args []string) error {
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q: this command takes only flags", pos[0])
	}
	return nil
}

// parseInterspersed parses flags wherever they stand among the arguments
// (`watch AAPL --json MSFT`), up to "--", and returns the other arguments,
// then fills the flags not given from the environment.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	help := fs.Usage
	fs.Usage = func() {}
	restore := hintDurations(fs)
	pos, err := parseArgs(fs, args)
	if err == nil {
		err = flagsFromEnv(fs)
	}
	restore()
	fs.Usage = help
	if errors.Is(err, flag.ErrHelp) {
		help()
	}
	return pos, err
}

// parseArgs parses the flags among args and returns the other arguments.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		if err != nil {
			return nil, badUsage(flagError(fs, err))
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// flagsFromEnv sets every flag not given on the command line from its
// environment variable, if set.
func flagsFromEnv(fs *flag.FlagSet) error {
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
				err = usagef("%s=%q (--%s): %v", env, v, f.Name, e)
			}
		}
	})
	return err
}

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return "TICKSTREAM_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// The errors of the flag package, rewritten by flagError in the --flag
// spelling of our help and docs.
var (
	flagUndefined = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	flagNoValue   = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
	flagBadValue  = regexp.MustCompile(`^invalid (?:boolean )?value ("(?:[^"\\]|\\.)*") for (?:flag )?-+([^:]*): (.*)$`)
)

func flagError(fs *flag.FlagSet, err error) error {
	s := err.Error()
	if m := flagUndefined.FindStringSubmatch(s); m != nil {
		return fmt.Errorf("unknown flag --%s", m[1])
	}
	if m := flagNoValue.FindStringSubmatch(s); m != nil {
		return fmt.Errorf("flag --%s needs a value", m[1])
	}
	if m := flagBadValue.FindStringSubmatch(s); m != nil {
		return fmt.Errorf("--%s %s: %s", m[2], m[1], valueHint(fs.Lookup(m[2]), m[3]))
	}
	return err
}

// valueHint replaces the flag package's "parse error" with what the flag
// wants.
func valueHint(f *flag.Flag, msg string) string {
	if msg != "parse error" || f == nil {
		return msg
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return "not a valid value"
	}
	switch g.Get().(type) {
	case bool:
		return "want true or false"
	case int, int64, uint, uint64:
		return "want a whole number"
	case float64:
		return "want a number"
	}
	return "not a valid value"
}

// hintDurations makes the duration flags of fs explain a bad value ("5"
// instead of "5s") rather than answer "parse error", until the returned
// func restores them; restoring keeps the flag package's help, which knows
// its own duration type only.
func hintDurations(fs *flag.FlagSet) (restore func()) {
	var undo []func()
	fs.VisitAll(func(f *flag.Flag) {
		g, ok := f.Value.(flag.Getter)
		if !ok {
			return
		}
		if _, ok := g.Get().(time.Duration); !ok {
			return
		}
		orig := f.Value
		f.Value = durationHint{g}
		undo = append(undo, func() { f.Value = orig })
	})
	return func() {
		for _, u := range undo {
			u()
		}
	}
}

// durationHint is a duration flag whose errors say how to write one.
type durationHint struct{ flag.Getter }

func (d durationHint) Set(s string) error {
	if err := d.Getter.Set(s); err == nil {
		return nil
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return fmt.Errorf("a duration needs a unit, e.g. %ss or %sms", s, s)
	}
	return errors.New("want a duration, e.g. 5s, 250ms or 1m30s")
}
