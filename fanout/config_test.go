package fanout

import (
	"errors"
	"testing"

	"github.com/tickstream/tickstream/internal/config"
	"github.com/tickstream/tickstream/snapshot"
)

// TestConfigRefused checks that NewHub refuses, naming the field, what it
// once clamped or replaced by a default.
func TestConfigRefused(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"hard limit under the soft one", Config{SoftLimit: 8192, HardLimit: 4096}, "HardLimit"},
		{"negative heartbeat", Config{Heartbeat: -1}, "Heartbeat"},
		{"negative flush delay", Config{FlushDelay: -1}, "FlushDelay"},
		{"negative subscriptions", Config{MaxSubscriptions: -5}, "MaxSubscriptions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hub, err := NewHub(snapshot.New(), tt.cfg)
			var fe *config.FieldError
			if hub != nil || !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("NewHub: %v, want a refusal of %s", err, tt.field)
			}
		})
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
}
