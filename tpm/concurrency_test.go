package tpm_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// Eight goroutines seal, unseal and sign at once, each with its own key,
// on a TPM with three object slots; every result is checked.
func TestConcurrentUse(t *testing.T) {
	tp := tpmtest.Open(t)
	ctx := context.Background()
	const workers, rounds = 8, 6
	keys := make([]*tpm.Key, workers)
	for i := range keys {
		keys[i] = newKey(t, tp, algorithms[i%2], []byte{byte(i), 0, 0xee})
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			auth := []byte{0, byte(w), 0, 7}
			for r := range rounds {
				secret := []byte(fmt.Sprintf("worker %d round %d", w, r))
				b, err := tp.Seal(ctx, secret, auth)
				if err != nil {
					errs <- fmt.Errorf("seal: %w", err)
					return
				}
				got, err := tp.Unseal(ctx, b, auth)
				if err != nil {
					errs <- fmt.Errorf("unseal: %w", err)
					return
				}
				if string(got) != string(secret) {
					errs <- fmt.Errorf("worker %d: unsealed %q", w, got)
					return
				}
				d := digestOf(string(secret))
				sig, err := keys[w].SignContext(ctx, d, crypto.SHA256)
				if err != nil {
					errs <- fmt.Errorf("sign: %w", err)
					return
				}
				if err := verifyErr(keys[w].Public(), d, sig); err != nil {
					errs <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	for _, k := range keys {
		require.NoError(t, k.Close())
	}
	requireOnlyBaseline(t, tp, 0)
}

// verifyErr is verify for goroutines other than the test's.
func verifyErr(pub crypto.PublicKey, digest, sig []byte) error {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(p, digest, sig) {
			return errors.New("ECDSA signature does not verify")
		}
		return nil
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(p, crypto.SHA256, digest, sig)
	}
	return fmt.Errorf("unexpected public key %T", pub)
}
