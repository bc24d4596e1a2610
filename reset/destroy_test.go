package reset_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/resettest"
)

var errServiceFailed = errors.New("service failed after decrypting")

// halfFailingService breaks the Service contract the way a careless client
// might: it returns a protector together with an error.
type halfFailingService struct {
	reset.Service
	got *protector.Key
}

func (h *halfFailingService) Recover(ctx context.Context, token string, env *protector.Envelope) (*protector.Key, error) {
	k, err := h.Service.Recover(ctx, token, env)
	if err != nil {
		return nil, err
	}
	h.got = k
	return k, errServiceFailed
}

// R is destroyed even when the service hands it back with an error.
func TestNonDestructiveDestroysProtectorReturnedWithAnError(t *testing.T) {
	w := resettest.New(t)
	hs := &halfFailingService{Service: w.Client}
	before := marshal(t, w.Container)
	n, err := resetThrough(t, w, hs)
	require.ErrorIs(t, err, errServiceFailed)
	assert.Nil(t, n)
	assertDestroyed(t, hs.got, "R not destroyed")
	assertIntact(t, w, w.Container, before, w.PIN)
}
