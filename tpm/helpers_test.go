package tpm_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// onSimulator reports whether the tests run on the embedded simulator.
func onSimulator() bool { return strings.HasPrefix(tpmtest.Spec(), "sim") }

// requireSimulator skips tests that need the embedded simulator (seeds, a
// fresh TPM per open).
func requireSimulator(t *testing.T) {
	t.Helper()
	if !onSimulator() {
		t.Skipf("needs the embedded simulator, not %s", tpmtest.Spec())
	}
}

// requireOnlyBaseline checks that the TPM holds nothing but the SRK, the
// shared session and extra loaded keys.
func requireOnlyBaseline(t *testing.T, tp *tpm.TPM, extraObjects int) {
	t.Helper()
	objs, sess, err := tp.LoadedHandles(context.Background())
	require.NoError(t, err)
	require.Len(t, objs, 1+extraObjects, "transient objects loaded: %v", objs)
	require.Len(t, sess, 1, "sessions loaded: %v", sess)
}

// verify checks a signature over digest with pub.
func verify(t *testing.T, pub crypto.PublicKey, digest, sig []byte, opts crypto.SignerOpts) {
	t.Helper()
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		require.True(t, ecdsa.VerifyASN1(p, digest, sig), "ECDSA signature does not verify")
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			require.NoError(t, rsa.VerifyPSS(p, pss.Hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}))
		} else {
			require.NoError(t, rsa.VerifyPKCS1v15(p, opts.HashFunc(), digest, sig))
		}
	default:
		t.Fatalf("unexpected public key %T", pub)
	}
}

func digestOf(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}

const cryptoSHA256 = crypto.SHA256

// count returns how many commands with code cc the stats hold.
func count(s tpm.Stats, cc tpm2.TPMCC) uint64 { return s.Commands[cc] }
