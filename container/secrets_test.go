package container

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every fmt verb renders a Session as its String: verbs that fmt does not
// route through String (%d, %o, %b, …) must not print the container secret
// from the struct's fields.
func TestSessionPrintsNoSecretWithAnyVerb(t *testing.T) {
	tp := openTPM(t)
	c := provision(t, tp, testConfig())
	s := unlock(t, tp, c, testPIN)
	secret := append([]byte(nil), s.secret...)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%O", "%b", "%c", "%U", "%t", "%e"} {
		out := fmt.Sprintf(verb, s)
		assert.Equal(t, s.String(), out, verb)
		assert.NotContains(t, out, fmt.Sprintf("%d", secret), verb)
		assert.NotContains(t, out, fmt.Sprintf("%x", secret), verb)
	}
}

// A PIN history entry is exactly historyEntryLen bytes with nothing behind
// it, so clearing the slice wipes the whole PIN-derived value.
func TestHistoryMACLeavesNothingToWipe(t *testing.T) {
	s := make([]byte, secretLen)
	mac := (&options{}).historyMAC(s, "1b4e28ba-2fa1-41d2-883f-0016d3cca427", enter(testPIN))
	assert.Len(t, mac, historyEntryLen)
	assert.Equal(t, historyEntryLen, cap(mac), "bytes beyond len would survive clear(mac)")
}

// A clock before 1970 is refused up front: the format records Unix seconds
// from 0, so such a container could be saved but never loaded again.
func TestClockBeforeEpochIsRefused(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	past := func() time.Time { return time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC) }

	c, err := Provision(ctx, tp, testConfig(), testPIN, WithClock(past))
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Nil(t, c)

	c = provision(t, tp, testConfig())
	_, err = ChangePIN(ctx, tp, c, testPIN, otherPIN, WithClock(past))
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = Reprovision(ctx, tp, c, otherPIN, WithClock(past))
	assert.ErrorIs(t, err, ErrInvalidConfig)
}
