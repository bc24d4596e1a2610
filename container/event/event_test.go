package event

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// Every kind has its own name in logs; names are what log pipelines match.
func TestKindNamesAreDistinct(t *testing.T) {
	seen := map[string]Kind{}
	for k := Created; k <= Retired; k++ {
		name := k.String()
		assert.NotEqual(t, "unknown", name, "kind %d", int(k))
		if prev, dup := seen[name]; dup {
			t.Errorf("kinds %d and %d are both %q", prev, k, name)
		}
		seen[name] = k
	}
	assert.Equal(t, "unknown", Kind(0).String())
}

// LogValue gives the common fields and only the detail of the event's kind.
func TestLogValueCarriesTheKindsDetail(t *testing.T) {
	e := Event{Kind: WrongPIN, Time: time.Unix(0, 0), ContainerID: "c", KeyID: "{K}", Generation: 3, Remaining: 7, KeyName: "vpn"}
	got := map[string]slog.Value{}
	for _, a := range e.LogValue().Group() {
		got[a.Key] = a.Value
	}
	assert.Equal(t, "wrong_pin", got["event"].String())
	assert.Equal(t, int64(7), got["remaining"].Int64())
	assert.NotContains(t, got, "key", "a wrong PIN names no key")
	assert.NotContains(t, got, "event_id", "only events Windows logs carry its ID")
}
