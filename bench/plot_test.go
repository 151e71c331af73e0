package bench

import (
	"strings"
	"testing"
)

func TestLogTicks(t *testing.T) {
	tests := []struct {
		min, max float64
		labels   []string
	}{
		{3, 140, []string{"5", "10", "20", "50", "100"}},
		{0.4, 1.5, []string{"0.5", "1"}},
		{40, 90, []string{"50"}},
		{0, 10, nil},
	}
	for _, tt := range tests {
		var got []string
		for _, tk := range (logTicks{}).Ticks(tt.min, tt.max) {
			if tk.Value < tt.min || tk.Value > tt.max {
				t.Errorf("Ticks(%v, %v): tick %v outside the range", tt.min, tt.max, tk.Value)
			}
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if strings.Join(got, ",") != strings.Join(tt.labels, ",") {
			t.Errorf("Ticks(%v, %v) labels %v, want %v", tt.min, tt.max, got, tt.labels)
		}
	}
}
