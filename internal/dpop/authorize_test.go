package dpop

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Authorize sends the token as a DPoP token with a proof of the request:
// its method, its URL without the query, the token's hash, a fresh jti.
func TestAuthorize(t *testing.T) {
	k := newKey(t)
	now := time.Unix(1_800_000_000, 0)
	req, err := http.NewRequest(http.MethodPost, "https://drs.test/EnrollmentServer/key/?api-version=1.0#x", nil)
	require.NoError(t, err)
	require.NoError(t, Authorize(req, k, "tok", now))
	assert.Equal(t, "DPoP tok", req.Header.Get("Authorization"))
	p, err := Parse(req.Header.Get("DPoP"))
	require.NoError(t, err)
	require.NoError(t, p.Check(Expect{HTM: "POST", HTU: "https://drs.test/EnrollmentServer/key/", ATH: Hash([]byte("tok")),
		Now: now, MaxAge: time.Minute}))
	assert.Len(t, p.JTI, 22, "128 random bits, base64url")

	first := p.JTI
	require.NoError(t, AuthorizeReturnKey(req, k, "tok", now, []byte("rk")))
	p, err = Parse(req.Header.Get("DPoP"))
	require.NoError(t, err)
	assert.Equal(t, Hash([]byte("rk")), p.RKH)
	assert.NotEqual(t, first, p.JTI, "every proof is new")
	assert.Len(t, req.Header.Values("DPoP"), 1, "the header is replaced, not added to")
	assert.False(t, strings.Contains(p.HTU, "?"))
}
