package store

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

const testPIN = "135792"

func testConfig() container.Config {
	return container.Config{
		User:     "alice@contoso.com",
		UserID:   "6f1c2f8e-3a8b-4b6e-9a47-1b2c3d4e5f60",
		TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47",
	}
}

// otherUserConfig is testConfig for another user of the same tenant.
func otherUserConfig() container.Config {
	cfg := testConfig()
	cfg.User, cfg.UserID = "bob@contoso.com", "0b0b0b0b-3a8b-4b6e-9a47-1b2c3d4e5f60"
	return cfg
}

func provision(t testing.TB, tp *tpm.TPM, cfg container.Config) *container.Container {
	t.Helper()
	c, err := container.Provision(context.Background(), tp, cfg, testPIN)
	require.NoError(t, err)
	return c
}

func marshal(t testing.TB, c *container.Container) []byte {
	t.Helper()
	b, err := c.MarshalBinary()
	require.NoError(t, err)
	return b
}

// generations returns c and n-1 successors of it, one generation apart.
// Each enrols the PIN reset protector again: store tests need generations,
// and this one changes nothing in the TPM.
func generations(t testing.TB, tp *tpm.TPM, c *container.Container, n int) []*container.Container {
	t.Helper()
	sk, err := protector.GenerateServiceKey(protector.HPKEX25519)
	require.NoError(t, err)
	s, err := container.Unlock(context.Background(), tp, c, testPIN)
	require.NoError(t, err)
	defer s.Close()
	out := []*container.Container{c}
	for len(out) < n {
		next, err := s.EnablePINRecovery(context.Background(), sk.Public())
		require.NoError(t, err)
		out = append(out, next)
	}
	return out
}

// openTPM gives the test a TPM: the simulator, or the TPM HELLOSIM_TPM names.
func openTPM(t testing.TB) *tpm.TPM {
	t.Helper()
	return tpmtest.Open(t)
}
