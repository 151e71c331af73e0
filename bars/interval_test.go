package bars

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tickstream/tickstream/internal/config"
)

func TestParseIntervals(t *testing.T) {
	tests := []struct {
		spec string
		want string // FormatIntervals of the result
		err  string // part of the error, when one is due
	}{
		{spec: DefaultIntervals, want: "1s:15m,1m:24h"},
		{spec: "1m:24h, 1s:15m", want: "1s:15m,1m:24h"},
		{spec: "60s:1h,5s:10m,1h:168h", want: "5s:10m,1m:1h,1h:168h"},
		{spec: "90s:3h", want: "90s:3h"},
		{spec: "1m:7d,1h:30d", want: "1m:168h,1h:720h"},
		{spec: "1m:0d", err: "whole number of days"},
		{spec: "1m:1.5d", err: "whole number of days"},
		{spec: "1s:1s", want: "1s:1s"},
		{spec: "", err: "empty interval spec"},
		{spec: "1m", err: "want length:retention"},
		{spec: "1x:1h", err: "length"},
		{spec: "1m:forever", err: "retention"},
		{spec: "1500ms:1h", err: "whole number of seconds"},
		{spec: "7s:7m", err: "divides 24h"},
		{spec: "25h:50h", err: "divides 24h"},
		{spec: "1m:30s", err: "whole number of 1m bars"},
		{spec: "1m:90s", err: "whole number of 1m bars"},
		{spec: "1s:200h", err: "want 1 to 604800"},
		{spec: "1m:1h,60s:2h", err: "each length once"},
		{spec: "-1s:1h", err: "whole number of seconds"},
		{spec: "1s:1m,2s:1m,3s:1m,4s:1m,5s:1m,6s:1m,10s:1m,12s:1m,15s:1m", err: "want 1 to 8"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			ivs, err := ParseIntervals(tt.spec)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := FormatIntervals(ivs); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
			again, err := ParseIntervals(FormatIntervals(ivs))
			if err != nil || FormatIntervals(again) != tt.want {
				t.Fatalf("round trip: %v %v", again, err)
			}
		})
	}
}

func TestDefaultIntervals(t *testing.T) {
	ivs := DefaultConfig().Intervals
	want := []Interval{{Name: "1s", Len: time.Second, Keep: 900}, {Name: "1m", Len: time.Minute, Keep: 1440}}
	if len(ivs) != len(want) || ivs[0] != want[0] || ivs[1] != want[1] {
		t.Fatalf("got %+v, want %+v", ivs, want)
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	tests := []struct {
		name  string
		edit  func(*Config)
		field string // "" when valid
	}{
		{"default", func(*Config) {}, ""},
		{"one byte short of a bar", func(c *Config) { c.MaxBytes = BytesPerBar - 1 }, "MaxBytes"},
		{"one bar", func(c *Config) { c.MaxBytes = BytesPerBar }, ""},
		{"no interval", func(c *Config) { c.Intervals = []Interval{} }, "Intervals"},
		{"unsorted", func(c *Config) { c.Intervals = []Interval{good.Intervals[1], good.Intervals[0]} }, "Intervals"},
		{"bad name", func(c *Config) { c.Intervals = []Interval{{Name: "60s", Len: time.Minute, Keep: 1}} }, "Intervals"},
		{"keeps nothing", func(c *Config) { c.Intervals = []Interval{{Name: "1m", Len: time.Minute}} }, "Intervals"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.edit(&cfg)
			err := cfg.Validate()
			var fe *config.FieldError
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
				t.Fatalf("err %v, want a FieldError of %s", err, tt.field)
			}
			if _, err := New(cfg); (err == nil) != (tt.field == "") {
				t.Fatalf("New: %v", err)
			}
		})
	}
}
