package container

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// openTPM gives the test a TPM: the simulator, or the TPM HELLOSIM_TPM names.
func openTPM(t testing.TB) *tpm.TPM {
	t.Helper()
	return tpmtest.Open(t)
}

// failures is tp's dictionary-attack count: a test compares it before and
// after an operation that must spend no try.
func failures(t testing.TB, tp *tpm.TPM) uint32 {
	t.Helper()
	st, err := tp.LockoutStatus(context.Background())
	require.NoError(t, err)
	return st.Failures
}

const (
	testPIN  = "135792"
	otherPIN = "246801"
	thirdPIN = "582046"
)

func testConfig() Config {
	return Config{
		User:     "alice@contoso.com",
		UserID:   "6f1c2f8e-3a8b-4b6e-9a47-1b2c3d4e5f60",
		TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47",
	}
}

func provision(t testing.TB, tp *tpm.TPM, cfg Config, opts ...Option) *Container {
	t.Helper()
	c, err := Provision(context.Background(), tp, cfg, testPIN, opts...)
	require.NoError(t, err)
	return c
}

func unlock(t testing.TB, tp *tpm.TPM, c *Container, pin string) *Session {
	t.Helper()
	s, err := Unlock(context.Background(), tp, c, pin)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func marshal(t testing.TB, c *Container) []byte {
	t.Helper()
	b, err := c.MarshalBinary()
	require.NoError(t, err)
	return b
}

// signVerify signs a digest with k and checks it against pub.
func signVerify(t testing.TB, k crypto.Signer, pub crypto.PublicKey) {
	t.Helper()
	digest := sha256.Sum256([]byte("hello for business"))
	sig, err := k.Sign(nil, digest[:], crypto.SHA256)
	require.NoError(t, err)
	switch p := pub.(type) {
	case *rsa.PublicKey:
		require.NoError(t, rsa.VerifyPKCS1v15(p, crypto.SHA256, digest[:], sig))
	case *ecdsa.PublicKey:
		require.True(t, ecdsa.VerifyASN1(p, digest[:], sig), "ECDSA signature does not verify")
	default:
		t.Fatalf("unexpected public key %T", pub)
	}
}

// enter is pin as it comes in by the door (options.enterPIN).
func enter(pin string) nfcPIN { return (&options{}).enterPIN(pin) }

// forEachAlg runs fn in a subtest for each login-key algorithm, on a fresh
// TPM with a container provisioned with testConfig and that algorithm.
func forEachAlg(t *testing.T, fn func(t *testing.T, tp *tpm.TPM, cfg Config, c *Container)) {
	for _, alg := range []tpm.KeyAlgorithm{tpm.RSA2048, tpm.ECCP256} {
		t.Run(fmt.Sprint(alg), func(t *testing.T) {
			tp := openTPM(t)
			cfg := testConfig()
			cfg.Algorithm = alg
			fn(t, tp, cfg, provision(t, tp, cfg))
		})
	}
}
