package config

import (
	"errors"
	"testing"
	"time"
)

type inner struct {
	N int
	S string
}

type outer struct {
	D       time.Duration
	On      bool
	Names   []string
	Inner   inner
	private int
}

func TestFillZero(t *testing.T) {
	def := outer{D: time.Second, On: true, Names: []string{"a"}, Inner: inner{N: 5, S: "x"}, private: 9}
	tests := []struct {
		name string
		in   outer
		want outer
	}{
		{"zero takes every default but booleans", outer{}, outer{D: time.Second, Names: []string{"a"}, Inner: inner{N: 5, S: "x"}}},
		{"set fields stay", outer{D: -1, On: true, Names: []string{"b"}, Inner: inner{N: 2}}, outer{D: -1, On: true, Names: []string{"b"}, Inner: inner{N: 2, S: "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in
			FillZero(&got, def)
			if got.D != tt.want.D || got.On != tt.want.On || len(got.Names) != len(tt.want.Names) || got.Names[0] != tt.want.Names[0] ||
				got.Inner != tt.want.Inner || got.private != 0 {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFieldErrors(t *testing.T) {
	err := First(nil, Within("Fanout", Check(false, "HardLimit", 10, "at least SoftLimit")), Check(false, "Other", 1, "x"))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "Fanout.HardLimit" || err.Error() != "Fanout.HardLimit 10: want at least SoftLimit" {
		t.Fatalf("got %v", err)
	}
	if err := First(Check(true, "A", 1, "x"), Within("B", nil)); err != nil {
		t.Fatalf("no failed check: %v", err)
	}
}
