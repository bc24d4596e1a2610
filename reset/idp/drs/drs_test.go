package drs_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/clocktest"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/idp/drs"
	"github.com/hellosim/hellosim/reset/idp/internal/idptest"
	"github.com/hellosim/hellosim/reset/keycred"
	"github.com/hellosim/hellosim/reset/resettest"
)

// world is a directory with alice and a joined device, and the endpoint
// on a loopback server.
type world struct {
	clk    *clocktest.Clock
	p      *idp.IdP
	alice  idp.User
	device idp.Device
	srv    *httptest.Server
	client *drs.Client
}

const alicePW = "correct horse battery"

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{clk: clocktest.New(time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC))}
	var err error
	w.p, err = idp.New(idp.WithClock(w.clk.Now), idp.WithArgon2(resettest.CheapArgon2()))
	require.NoError(t, err)
	tn, err := w.p.AddTenant(idp.TenantConfig{Domain: "contoso.test"})
	require.NoError(t, err)
	w.alice, err = w.p.AddUser(idp.UserConfig{TenantID: tn.ID, UPN: "alice@contoso.test", Password: alicePW})
	require.NoError(t, err)
	w.device, err = w.p.AddDevice(idp.DeviceConfig{TenantID: tn.ID, DisplayName: "DESKTOP-1"})
	require.NoError(t, err)
	w.srv = httptest.NewServer(drs.Handler(w.p))
	t.Cleanup(w.srv.Close)
	w.client, err = drs.NewClient(w.srv.URL, w.srv.Client())
	require.NoError(t, err)
	return w
}

// signIn completes password + TOTP; it moves the clock to the next TOTP
// step first so that repeated sign-ins never reuse a code.
func (w *world) signIn(t testing.TB) (*idp.Pending, string) {
	t.Helper()
	return idptest.SignIn(t, w.p, w.clk, w.alice.UPN, alicePW)
}

// token signs alice in with MFA and asks for a device-bound DRS token.
func (w *world) token(t testing.TB) string {
	t.Helper()
	p, _ := w.signIn(t)
	return idptest.DRSToken(t, p, w.device.DeviceID)
}

func TestWireFormat(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	key := idptest.RSAKey(t)
	blob, err := keycred.MarshalPublicKey(&key.PublicKey)
	require.NoError(t, err)
	body := `{"kngc":"` + base64.StdEncoding.EncodeToString(blob) + `"}`
	req, err := http.NewRequest(http.MethodPost, w.srv.URL+"/EnrollmentServer/key/?api-version=1.0", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+w.token(t))
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var got map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	assert.Equal(t, map[string]string{"kid": keycred.Identifier(blob), "upn": w.alice.UPN}, got)
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	key := idptest.RSAKey(t)
	blob, err := keycred.MarshalPublicKey(&key.PublicKey)
	require.NoError(t, err)
	kngc := func(b []byte) string { return `{"kngc":"` + base64.StdEncoding.EncodeToString(b) + `"}` }

	earlier, _ := w.signIn(t)
	w.clk.Advance(idp.NGCMFAWindow + time.Second)
	stale, err := earlier.DeviceToken(context.Background(), w.device.DeviceID, idp.DRSResource)
	require.NoError(t, err)
	pending, pinResetToken := w.signIn(t)
	drsTok, err := pending.DeviceToken(context.Background(), w.device.DeviceID, idp.DRSResource)
	require.NoError(t, err)
	unbound, err := pending.DeviceToken(context.Background(), "", idp.DRSResource)
	require.NoError(t, err)

	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	smallBlob, err := keycred.MarshalPublicKey(&small.PublicKey)
	require.NoError(t, err)
	private := append([]byte(nil), blob...)
	binary.LittleEndian.PutUint32(private, 0x32415352) // "RSA2"

	for _, tc := range []struct {
		name, method, query, ctype, token, body string
		status                                  int
		code                                    string
		want                                    error
	}{
		{"no token", "", "", "", "-", kngc(blob), 401, "invalid_token", idp.ErrTokenRefused},
		{"PIN reset token: wrong audience", "", "", "", pinResetToken, kngc(blob), 401, "invalid_token", idp.ErrTokenRefused},
		{"garbage token", "", "", "", "abc.def.ghi", kngc(blob), 401, "invalid_token", idp.ErrTokenRefused},
		{"no deviceid", "", "", "", unbound, kngc(blob), 403, "device_not_bound", idp.ErrDeviceNotBound},
		{"no ngcmfa", "", "", "", stale, kngc(blob), 403, "ngcmfa_required", idp.ErrTokenWithoutMFA},
		{"RSA-1024", "", "", "", drsTok, kngc(smallBlob), 400, "invalid_key", idp.ErrUnsupportedKey},
		{"private blob", "", "", "", drsTok, kngc(private), 400, "invalid_key", idp.ErrUnsupportedKey},
		{"kngc not base64", "", "", "", drsTok, `{"kngc":"***"}`, 400, "invalid_request", nil},
		{"no kngc", "", "", "", drsTok, `{}`, 400, "invalid_request", nil},
		{"unknown field", "", "", "", drsTok, `{"kngc":"AA==","x":1}`, 400, "invalid_request", nil},
		{"KNGC in capitals", "", "", "", drsTok, strings.Replace(kngc(blob), "kngc", "KNGC", 1), 400, "invalid_request", nil},
		{"kngc not a string", "", "", "", drsTok, `{"kngc":1}`, 400, "invalid_request", nil},
		{"null body", "", "", "", drsTok, `null`, 400, "invalid_request", nil},
		{"two objects", "", "", "", drsTok, kngc(blob) + kngc(blob), 400, "invalid_request", nil},
		{"wrong api-version", "", "api-version=2.0", "", drsTok, kngc(blob), 400, "invalid_request", nil},
		{"not JSON", "", "", "text/plain", drsTok, kngc(blob), 400, "invalid_request", nil},
		{"GET", http.MethodGet, "", "", drsTok, "", 405, "invalid_request", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method, query, ctype := tc.method, tc.query, tc.ctype
			if method == "" {
				method = http.MethodPost
			}
			if query == "" {
				query = "api-version=1.0"
			}
			if ctype == "" {
				ctype = "application/json"
			}
			req := httptest.NewRequest(method, "/EnrollmentServer/key/?"+query, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", ctype)
			if tc.token != "-" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			rec := httptest.NewRecorder()
			drs.Handler(w.p).ServeHTTP(rec, req)
			assert.Equal(t, tc.status, rec.Code)
			var e drs.RefusalError
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e), rec.Body.String())
			assert.Equal(t, tc.code, e.Code)
			if tc.status == 401 {
				assert.Equal(t, `Bearer error="invalid_token"`, rec.Header().Get("WWW-Authenticate"))
				assert.NotContains(t, e.Message, "audience", "a refused token's answer says nothing of why")
			}
			if tc.want != nil {
				e.Status = tc.status
				assert.ErrorIs(t, &e, tc.want)
			}
		})
	}
	k, err := w.p.RegisteredKeys(w.alice.UPN)
	require.NoError(t, err)
	assert.Empty(t, k, "nothing refused was registered")

	// A token registers one key; another key with it is refused.
	_, err = w.client.RegisterHelloKey(context.Background(), drsTok, &key.PublicKey)
	require.NoError(t, err)
	_, err = w.client.RegisterHelloKey(context.Background(), drsTok, &idptest.RSAKey(t).PublicKey)
	assert.ErrorIs(t, err, idp.ErrTokenUsed)
	assert.ErrorIs(t, err, idp.ErrTokenRefused)
}

func TestClientImplementsDirectoryWithItsOwnToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p, pinResetToken := w.signIn(t)
	w.client.Token = func(ctx context.Context) (string, error) {
		return p.DeviceToken(ctx, w.device.DeviceID, idp.DRSResource)
	}
	key := idptest.RSAKey(t)
	require.NoError(t, w.client.RegisterKey(context.Background(), pinResetToken, "{FA0DB076-A5D7-4844-82D8-50A2FB42EC7B}", &key.PublicKey))
	keys, err := w.p.RegisteredKeys(w.alice.UPN)
	require.NoError(t, err)
	require.Len(t, keys, 1)
	assert.True(t, key.PublicKey.Equal(keys[0].Public))

	// Without the token source, the PIN reset token is refused.
	w.client.Token = nil
	err = w.client.RegisterKey(context.Background(), pinResetToken, "{FA0DB076-A5D7-4844-82D8-50A2FB42EC7C}", &idptest.RSAKey(t).PublicKey)
	assert.ErrorIs(t, err, idp.ErrTokenRefused)
}

func TestClientRefusesAnAnswerForAnotherKey(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kid":"AAAA","upn":"alice@contoso.test"}`))
	}))
	defer srv.Close()
	c, err := drs.NewClient(srv.URL, srv.Client())
	require.NoError(t, err)
	_, err = c.RegisterHelloKey(context.Background(), "t", &idptest.RSAKey(t).PublicKey)
	var e *drs.RefusalError
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "bad_response", e.Code)

	_, err = drs.NewClient("http://example", nil)
	assert.ErrorIs(t, err, idp.ErrInvalid, "plain http off loopback")
}
