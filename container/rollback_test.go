package container

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// rollbackCases are the three operations after which an old copy of the
// container must be refused by the TPM. Each returns the new container,
// saved (Retire called) as a caller does, and the new PIN.
var rollbackCases = []struct {
	name    string
	revoked error // what the old copy with its old PIN gets
	op      func(t *testing.T, tp *tpm.TPM, c *Container, svc *protector.ServicePrivateKey) *Container
}{
	{"ChangePIN", ErrWrongPIN, func(t *testing.T, tp *tpm.TPM, c *Container, _ *protector.ServicePrivateKey) *Container {
		n, err := ChangePIN(context.Background(), tp, c, testPIN, otherPIN)
		require.NoError(t, err)
		return n
	}},
	{"NonDestructive", ErrRevoked, func(t *testing.T, tp *tpm.TPM, c *Container, svc *protector.ServicePrivateKey) *Container {
		ctx := context.Background()
		r := recovered(t, svc, c)
		defer r.Destroy()
		next := svc.Public()
		n, err := ResetPIN(ctx, tp, c, r, otherPIN, &next)
		require.NoError(t, err)
		return retireAfterOldUnlocks(t, tp, c, n)
	}},
	{"Destructive", ErrRevoked, func(t *testing.T, tp *tpm.TPM, c *Container, _ *protector.ServicePrivateKey) *Container {
		ctx := context.Background()
		n, err := Reprovision(ctx, tp, c, otherPIN)
		require.NoError(t, err)
		return retireAfterOldUnlocks(t, tp, c, n)
	}},
}

// After ChangePIN, a non-destructive and a destructive reset, the container
// from before (the same bytes as an old file) is refused by the TPM with
// its old PIN; the new one opens with the new PIN. One NV index per live
// container.
func TestOldContainerRefusedAfterChangeAndResets(t *testing.T) {
	for _, tc := range rollbackCases {
		t.Run(tc.name, func(t *testing.T) {
			tp, svc := openWithService(t)
			ctx := context.Background()
			c := provision(t, tp, testConfig())
			require.True(t, c.RollbackProtection().On, c.RollbackProtection().String())
			e := enableRecovery(t, tp, c, testPIN, svc)
			old, err := Parse(marshal(t, e)) // the file as it was
			require.NoError(t, err)

			n := tc.op(t, tp, e, svc)

			tp.ResetStats()
			_, err = Unlock(ctx, tp, old, testPIN)
			require.ErrorIs(t, err, tc.revoked)
			assert.Equal(t, uint64(1), tp.Stats().Commands[tpm2.TPMCCNVRead], "the TPM was asked, and refused")
			_, err = ChangePIN(ctx, tp, old, testPIN, thirdPIN)
			require.ErrorIs(t, err, tc.revoked, "nor can the old PIN set a PIN of its own")

			s := unlock(t, tp, n, otherPIN)
			signVerify(t, s.Signer(), n.PublicKey())

			secrets, err := tp.Secrets(ctx)
			require.NoError(t, err)
			assert.Len(t, secrets, 1, "one NV index for the one live container")
			assert.Equal(t, n.NVIndex(), secrets[0])
		})
	}
}

// A ChangePIN or reset that fails — a wrong PIN, a new PIN the policy
// refuses, a protector that does not open the secret — revokes nothing and
// leaves no NV index behind.
func TestFailedOperationsRevokeNothing(t *testing.T) {
	tp, svc := openWithService(t)
	ctx := context.Background()
	c := provision(t, tp, testConfig())
	e := enableRecovery(t, tp, c, testPIN, svc)
	other := provision(t, tp, testConfig()) // its protector opens another secret
	oe := enableRecovery(t, tp, other, testPIN, svc)
	wrongR := recovered(t, svc, oe)
	defer wrongR.Destroy()
	before, err := tp.Secrets(ctx)
	require.NoError(t, err)

	for name, op := range map[string]func() error{
		"ChangePIN, wrong PIN": func() error { _, err := ChangePIN(ctx, tp, e, "97531864", otherPIN); return err },
		"ChangePIN, weak PIN":  func() error { _, err := ChangePIN(ctx, tp, e, testPIN, "1111"); return err },
		"ResetPIN, weak PIN": func() error {
			r := recovered(t, svc, e)
			defer r.Destroy()
			_, err = ResetPIN(ctx, tp, e, r, "1111", nil)
			return err
		},
		"ResetPIN, wrong protector": func() error { _, err := ResetPIN(ctx, tp, e, wrongR, otherPIN, nil); return err },
		"Reprovision, weak PIN":     func() error { _, err := Reprovision(ctx, tp, e, "1111"); return err },
	} {
		require.Error(t, op(), name)
		s, err := Unlock(ctx, tp, e, testPIN)
		require.NoError(t, err, "%s: the container still opens with its PIN", name)
		s.Close()
		after, err := tp.Secrets(ctx)
		require.NoError(t, err)
		assert.ElementsMatch(t, before, after, "%s: no index defined or undefined", name)
	}
	require.NoError(t, tp.ResetLockout(ctx, nil))
}

// A ChangePIN whose process dies after the TPM switched, before the new
// container was saved, loses nothing: the salt is the same, so the old
// file opens with the new PIN (and not the old one).
func TestOldFileOpensWithNewPINAfterUnsavedChange(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	c := provision(t, tp, testConfig())
	_, err := ChangePIN(ctx, tp, c, testPIN, otherPIN) // result never saved
	require.NoError(t, err)
	s := unlock(t, tp, c, otherPIN)
	signVerify(t, s.Signer(), c.PublicKey())
	_, err = Unlock(ctx, tp, c, testPIN)
	require.ErrorIs(t, err, ErrWrongPIN)
	require.NoError(t, tp.ResetLockout(ctx, nil))
}

// The attacker runs their own code: raw go-tpm commands on the TPM, no
// library code, with what an old copy of the file holds (the NV handle and
// Name, the salt) and the PIN of its time, from which the authValue is
// HMAC-SHA256(salt, PIN). Before the change the same commands read the
// secret (the control); after ChangePIN the TPM answers TPM_RC_AUTH_FAIL,
// after a reset and Retire TPM_RC_HANDLE.
func TestRawTPMCommandsWithOldCopyGetTPMError(t *testing.T) {
	for _, tc := range rollbackCases {
		t.Run(tc.name, func(t *testing.T) {
			raw := tpmtest.OpenTransport(t)
			tp := tpmtest.OpenOn(t, raw)
			ctx := context.Background()
			svc := newServiceKey(t, protector.HPKEX25519)
			c := provision(t, tp, testConfig())
			e := enableRecovery(t, tp, c, testPIN, svc)
			handle, name, salt := e.NVIndex().Handle, e.NVIndex().Name, e.salt // from the old file

			m := hmac.New(sha256.New, salt)
			m.Write([]byte(testPIN)) // ASCII digits: NFC changes nothing
			oldAuth := m.Sum(nil)
			read := func() error {
				_, err := tpm2.NVRead{
					AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(handle), Name: tpm2.TPM2BName{Buffer: name}, Auth: tpm2.PasswordAuth(oldAuth)},
					NVIndex:    tpm2.NamedHandle{Handle: tpm2.TPMHandle(handle), Name: tpm2.TPM2BName{Buffer: name}},
					Size:       32,
				}.Execute(raw)
				return err
			}
			require.NoError(t, read(), "control: the old authValue reads the index before the change")

			tc.op(t, tp, e, svc)

			err := read()
			var rc tpm2.TPMRC
			require.True(t, errors.As(err, &rc), "a TPM response code, not %v", err)
			if tc.name == "ChangePIN" {
				assert.ErrorIs(t, err, tpm2.TPMRCAuthFail)
			} else {
				assert.ErrorIs(t, err, tpm2.TPMRCHandle)
			}
			require.NoError(t, tp.ResetLockout(ctx, nil))
		})
	}
}

// noClose hands the library a transport it must not close: the test's
// raw transport stays open for the attacker.
type noClose struct{ transport.TPM }

// The seeded simulator keeps keys across processes but not NV: containers
// made on it are sealed, say so, and work as before.
func TestSeededSimulatorSaysRollbackProtectionIsOff(t *testing.T) {
	if tpmtest.Spec() != "sim" {
		t.Skip("needs the embedded simulator")
	}
	tp, err := tpm.OpenSimulator(tpm.WithSeed(7))
	require.NoError(t, err)
	t.Cleanup(func() { tp.Close() })
	ctx := context.Background()
	c, err := Provision(ctx, tp, testConfig(), testPIN)
	require.NoError(t, err)
	rb := c.RollbackProtection()
	assert.False(t, rb.On)
	assert.Contains(t, rb.String(), "off (the seeded embedded simulator")
	s, err := Unlock(ctx, tp, c, testPIN)
	require.NoError(t, err)
	s.Close()
	n, err := ChangePIN(ctx, tp, c, testPIN, otherPIN)
	require.NoError(t, err)
	assert.False(t, n.RollbackProtection().On)
	back, err := Parse(marshal(t, n))
	require.NoError(t, err)
	assert.Equal(t, rb, back.RollbackProtection(), "the reason is in the file")
}

// When the TPM's owner has set an owner authorization, the library (which
// sends the empty one) cannot define or undefine NV indices: a new
// container is sealed and says why; a PIN change of a container made
// before still works in place (it needs the PIN, not the owner); a reset's
// Retire fails with tpm.ErrOwnerAuth and revokes nothing.
func TestOwnerAuthorizationSet(t *testing.T) {
	raw := tpmtest.OpenTransport(t)
	tp := tpmtest.OpenOn(t, raw)
	ctx := context.Background()
	before := provision(t, tp, testConfig())
	require.True(t, before.RollbackProtection().On)

	ownerAuth := []byte("the owner's secret")
	_, err := tpm2.HierarchyChangeAuth{
		AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		NewAuth:    tpm2.TPM2BAuth{Buffer: ownerAuth},
	}.Execute(raw)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := tpm2.HierarchyChangeAuth{
			AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(ownerAuth)},
		}.Execute(raw)
		require.NoError(t, err, "give the owner its empty authorization back")
	})

	c := provision(t, tp, testConfig())
	rb := c.RollbackProtection()
	assert.False(t, rb.On)
	assert.Contains(t, rb.Reason, "owner authorization")
	s := unlock(t, tp, c, testPIN)
	require.NoError(t, s.Close())

	n, err := ChangePIN(ctx, tp, before, testPIN, otherPIN)
	require.NoError(t, err, "NV_ChangeAuth needs the PIN, not the owner")
	assert.True(t, n.RollbackProtection().On)

	m, err := Reprovision(ctx, tp, n, thirdPIN)
	require.NoError(t, err)
	assert.False(t, m.RollbackProtection().On)
	_, err = Retire(ctx, tp, m)
	require.ErrorIs(t, err, tpm.ErrOwnerAuth)
	s = unlock(t, tp, n, otherPIN)
	require.NoError(t, s.Close(), "nothing was revoked")
	st, err := tp.LockoutStatus(ctx)
	require.NoError(t, err)
	assert.Zero(t, st.Failures, "a refused owner authorization costs no dictionary-attack count")
}

// WithoutRollbackProtection seals the secret and records the reason, cut
// to what the format holds, so the container still saves and loads.
func TestWithoutRollbackProtectionRecordsReason(t *testing.T) {
	tp := openTPM(t)
	long := strings.Repeat("é", 150) // 300 bytes
	c := provision(t, tp, testConfig(), WithoutRollbackProtection(long))
	rb := c.RollbackProtection()
	assert.False(t, rb.On)
	assert.True(t, utf8.ValidString(rb.Reason))
	assert.LessOrEqual(t, len(rb.Reason), 200)
	back, err := Parse(marshal(t, c))
	require.NoError(t, err)
	assert.Equal(t, rb, back.RollbackProtection())
	assert.True(t, c.NVIndex().IsZero())
	s := unlock(t, tp, c, testPIN)
	require.NoError(t, s.Close())
}

// retireAfterOldUnlocks checks that old, the container n replaces, still
// unlocks — nothing is revoked before the caller has the new one safe — and
// then retires it.
func retireAfterOldUnlocks(t *testing.T, tp *tpm.TPM, old, n *Container) *Container {
	t.Helper()
	ctx := context.Background()
	s, err := Unlock(ctx, tp, old, testPIN)
	require.NoError(t, err, "before Retire")
	s.Close()
	n, err = Retire(ctx, tp, n)
	require.NoError(t, err)
	return n
}
