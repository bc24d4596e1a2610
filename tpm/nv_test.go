package tpm_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// A secret index reads with its authValue only; after ChangeSecretAuth the
// old authValue is refused by the TPM, and after UndefineSecret nothing
// reads it. Commands counted: define 2, read 1, change 4, undefine 1.
func TestNVSecretLifecycle(t *testing.T) {
	tp := tpmtest.Open(t)
	ctx := context.Background()
	secret := bytes.Repeat([]byte{0x5a}, tpm.NVSecretSize)
	oldAuth, newAuth := []byte{0x61, 0x00, 0x62}, []byte("new auth value")

	tp.ResetStats()
	s, err := tp.DefineSecret(ctx, secret, oldAuth)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), tp.Stats().Total(), "define: NV_DefineSpace, NV_Write")
	assert.GreaterOrEqual(t, s.Handle, tpm.NVFirst)
	assert.LessOrEqual(t, s.Handle, tpm.NVLast)

	tp.ResetStats()
	got, err := tp.ReadSecret(ctx, s, oldAuth)
	require.NoError(t, err)
	assert.Equal(t, secret, got)
	assert.Equal(t, uint64(1), tp.Stats().Total(), "read: NV_Read")

	_, err = tp.ReadSecret(ctx, s, []byte{0x61, 0x62})
	var ae *tpm.AuthError
	require.ErrorAs(t, err, &ae, "an inner zero counts")
	assert.Equal(t, tpm.WindowsMaxTries-1, ae.Remaining, "a wrong authValue counts toward lockout")

	tp.ResetStats()
	require.NoError(t, tp.ChangeSecretAuth(ctx, s, oldAuth, newAuth))
	assert.Equal(t, uint64(4), tp.Stats().Total(), "change: StartAuthSession, PolicyCommandCode, PolicyAuthValue, NV_ChangeAuth")
	requireOnlyBaseline(t, tp, 0)

	_, err = tp.ReadSecret(ctx, s, oldAuth)
	require.ErrorIs(t, err, tpm.ErrAuthFailed, "the old authValue is refused")
	got, err = tp.ReadSecret(ctx, s, newAuth)
	require.NoError(t, err)
	assert.Equal(t, secret, got)

	err = tp.ChangeSecretAuth(ctx, s, oldAuth, []byte("attacker"))
	require.ErrorIs(t, err, tpm.ErrAuthFailed, "changing needs the current authValue")
	requireOnlyBaseline(t, tp, 0)

	list, err := tp.Secrets(ctx)
	require.NoError(t, err)
	assert.Contains(t, list, s)

	tp.ResetStats()
	require.NoError(t, tp.UndefineSecret(ctx, s))
	assert.Equal(t, uint64(1), tp.Stats().Total())
	_, err = tp.ReadSecret(ctx, s, newAuth)
	require.ErrorIs(t, err, tpm.ErrNVGone)
	require.NoError(t, tp.UndefineSecret(ctx, s), "already gone is done")
	list, err = tp.Secrets(ctx)
	require.NoError(t, err)
	assert.NotContains(t, list, s)
	_ = tpm2.TPMCCNVRead
}

// The index holding a secret answers to its authValue only. The owner and
// the platform, whose authorizations are empty on most machines (the
// simulator and swtpm among them), can neither read nor write it: the TPM
// answers TPM_RC_NV_AUTHORIZATION (no OWNERREAD, OWNERWRITE, PPREAD or
// PPWRITE). Its public area, read back with TPM2_NV_ReadPublic, is exactly
// the one the library documents: AUTHREAD, AUTHWRITE, WRITEALL and
// WRITTEN and nothing else (NO_DA among the absent), SHA-256, the
// PolicyCommandCode(NV_ChangeAuth) ∧ PolicyAuthValue policy, 32 bytes.
func TestNVSecretIndexAnswersToItsAuthValueOnly(t *testing.T) {
	raw := tpmtest.OpenTransport(t)
	tp := tpmtest.OpenOn(t, raw)
	ctx := context.Background()
	secret := bytes.Repeat([]byte{0x3c}, tpm.NVSecretSize)
	s, err := tp.DefineSecret(ctx, secret, []byte("the index's authValue"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = tp.UndefineSecret(context.Background(), s) })
	index := tpm2.NamedHandle{Handle: tpm2.TPMHandle(s.Handle), Name: tpm2.TPM2BName{Buffer: s.Name}}

	for _, hierarchy := range []tpm2.TPMHandle{tpm2.TPMRHOwner, tpm2.TPMRHPlatform} {
		auth := tpm2.AuthHandle{Handle: hierarchy, Auth: tpm2.PasswordAuth(nil)}
		_, err := tpm2.NVRead{AuthHandle: auth, NVIndex: index, Size: tpm.NVSecretSize}.Execute(raw)
		assert.ErrorIs(t, err, tpm2.TPMRCNVAuthorization, "read with the empty authorization of %#x", uint32(hierarchy))
		_, err = tpm2.NVWrite{AuthHandle: auth, NVIndex: index, Data: tpm2.TPM2BMaxNVBuffer{Buffer: make([]byte, tpm.NVSecretSize)}}.Execute(raw)
		assert.ErrorIs(t, err, tpm2.TPMRCNVAuthorization, "write with the empty authorization of %#x", uint32(hierarchy))
	}
	got, err := tp.ReadSecret(ctx, s, []byte("the index's authValue"))
	require.NoError(t, err)
	assert.Equal(t, secret, got, "the secret is as written")

	rsp, err := tpm2.NVReadPublic{NVIndex: tpm2.TPMHandle(s.Handle)}.Execute(raw)
	require.NoError(t, err)
	pub, err := rsp.NVPublic.Contents()
	require.NoError(t, err)
	assert.Equal(t, tpm2.TPMHandle(s.Handle), pub.NVIndex)
	assert.Equal(t, tpm2.TPMAlgSHA256, pub.NameAlg)
	// AUTHWRITE (bit 2), WRITEALL (12), AUTHREAD (18), WRITTEN (29): Part 2 §13.4.
	assert.Equal(t, []byte{0x20, 0x04, 0x10, 0x04}, tpm2.Marshal(pub.Attributes), "attributes %+v", pub.Attributes)
	calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	require.NoError(t, err)
	require.NoError(t, tpm2.PolicyCommandCode{Code: tpm2.TPMCCNVChangeAuth}.Update(calc))
	require.NoError(t, tpm2.PolicyAuthValue{}.Update(calc))
	assert.Equal(t, calc.Hash().Digest, pub.AuthPolicy.Buffer, "authPolicy")
	assert.Equal(t, uint16(tpm.NVSecretSize), pub.DataSize)
	assert.Equal(t, s.Name, rsp.NVName.Buffer, "the Name pinned is the TPM's")
}

// NV indices the library did not define are not its to touch. An index in
// its range with other attributes (here the secret index's policy with
// OWNERREAD added) is not listed by Secrets, so a caller removing orphans
// never undefines it; an index outside the range, named with its true
// Name as an edited container file could name it, is refused before any
// command (ErrCorruptBlob) and stays defined.
func TestNVForeignIndicesUntouched(t *testing.T) {
	raw := tpmtest.OpenTransport(t)
	tp := tpmtest.OpenOn(t, raw)
	ctx := context.Background()
	calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	require.NoError(t, err)
	require.NoError(t, tpm2.PolicyCommandCode{Code: tpm2.TPMCCNVChangeAuth}.Update(calc))
	require.NoError(t, tpm2.PolicyAuthValue{}.Update(calc))
	owner := tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)}
	define := func(h tpm2.TPMHandle, attrs tpm2.TPMANV) tpm.NVSecret {
		_, err := tpm2.NVDefineSpace{AuthHandle: owner, PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{
			NVIndex: h, NameAlg: tpm2.TPMAlgSHA256, Attributes: attrs,
			AuthPolicy: tpm2.TPM2BDigest{Buffer: calc.Hash().Digest}, DataSize: tpm.NVSecretSize,
		})}.Execute(raw)
		require.NoError(t, err)
		rsp, err := tpm2.NVReadPublic{NVIndex: h}.Execute(raw)
		require.NoError(t, err)
		t.Cleanup(func() {
			_, _ = tpm2.NVUndefineSpace{AuthHandle: owner, NVIndex: tpm2.NamedHandle{Handle: h, Name: rsp.NVName}}.Execute(raw)
		})
		return tpm.NVSecret{Handle: uint32(h), Name: rsp.NVName.Buffer}
	}
	secretAttrs := tpm2.TPMANV{AuthWrite: true, WriteAll: true, AuthRead: true}
	withOwnerRead := secretAttrs
	withOwnerRead.OwnerRead = true

	inRange := define(tpm2.TPMHandle(tpm.NVFirst+7), withOwnerRead)
	ours, err := tp.DefineSecret(ctx, bytes.Repeat([]byte{1}, tpm.NVSecretSize), []byte("auth"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = tp.UndefineSecret(context.Background(), ours) })
	list, err := tp.Secrets(ctx)
	require.NoError(t, err)
	assert.Contains(t, list, ours, "the control: the library's own index is listed")
	assert.NotContains(t, list, inRange, "an index with other attributes is not the library's")

	outside := define(tpm2.TPMHandle(tpm.NVFirst-1), secretAttrs)
	require.ErrorIs(t, tp.UndefineSecret(ctx, outside), tpm.ErrCorruptBlob)
	require.ErrorIs(t, tp.ChangeSecretAuth(ctx, outside, nil, []byte("x")), tpm.ErrCorruptBlob)
	_, err = tp.ReadSecret(ctx, outside, nil)
	require.ErrorIs(t, err, tpm.ErrCorruptBlob)
	_, err = tpm2.NVReadPublic{NVIndex: tpm2.TPMHandle(outside.Handle)}.Execute(raw)
	require.NoError(t, err, "the index outside the range is still defined")
}

// TestChangeSecretAuthLostAnswer loses the answer to TPM2_NV_ChangeAuth on
// the bus, in each way it can be lost, and checks that ChangeSecretAuth
// tells which authValue the index holds: nil when the new one, an error
// when still the old one, ErrChangeAuthLost only when it cannot find out;
// that the answer it gives is what the TPM holds; and what it cost in
// dictionary-attack counts: none, but for a forged hint, where one count
// is the most it spends.
func TestChangeSecretAuthLostAnswer(t *testing.T) {
	secret := bytes.Repeat([]byte{0xa5}, tpm.NVSecretSize)
	oldAuth, newAuth := []byte("old auth value"), []byte("new auth value")
	for _, tc := range []struct {
		name     string
		arm      func(ip *tpmtest.Interposer)
		changed  bool // the TPM holds newAuth afterwards
		unknown  bool // ErrChangeAuthLost
		failures uint32
	}{
		{
			name:    "executed, answer lost",
			arm:     func(ip *tpmtest.Interposer) { ip.Arm(tpm2.TPMCCNVChangeAuth, tpmtest.LoseAnswer) },
			changed: true,
		},
		{
			name: "executed, answer changed on the bus",
			arm: func(ip *tpmtest.Interposer) {
				ip.Rewrite(tpm2.TPMCCNVChangeAuth, func(_, rsp []byte) []byte { return flipAt(fromEnd(hmacFromE), 0x01)(rsp) })
			},
			changed: true,
		},
		{
			name: "command dropped",
			arm:  func(ip *tpmtest.Interposer) { ip.Arm(tpm2.TPMCCNVChangeAuth, tpmtest.DropCommand) },
		},
		{
			name:    "executed, answer lost, bus down",
			arm:     func(ip *tpmtest.Interposer) { ip.Arm(tpm2.TPMCCNVChangeAuth, tpmtest.LoseAnswerThenDown) },
			changed: true,
			unknown: true,
		},
		{
			// The session was flushed by the probe itself, and its answer
			// forged: the hint says "changed" when nothing changed. The
			// read with the new authValue fails at one count, the read
			// with the old one settles it.
			name: "command dropped, hint forged",
			arm: func(ip *tpmtest.Interposer) {
				ip.Arm(tpm2.TPMCCNVChangeAuth, tpmtest.DropCommand)
				ip.Rewrite(tpm2.TPMCCFlushContext, func(_, _ []byte) []byte { return tpmtest.ErrorAnswer(tpm2.TPMRCHandle) })
			},
			failures: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			ip := tpmtest.NewInterposer(tpmtest.OpenTransport(t))
			tp := tpmtest.OpenOn(t, ip)
			s, err := tp.DefineSecret(ctx, secret, oldAuth)
			require.NoError(t, err)
			t.Cleanup(func() { _ = tp.UndefineSecret(context.Background(), s) })

			tc.arm(ip)
			err = tp.ChangeSecretAuth(ctx, s, oldAuth, newAuth)
			require.NotZero(t, ip.Fired(), "the fault was injected")
			ip.Up()
			switch {
			case tc.unknown:
				require.ErrorIs(t, err, tpm.ErrChangeAuthLost)
			case tc.changed:
				require.NoError(t, err, "the change went through: ChangeSecretAuth says so")
			default:
				require.Error(t, err, "nothing changed: ChangeSecretAuth fails")
				assert.NotErrorIs(t, err, tpm.ErrChangeAuthLost, "the outcome is known")
				assert.NotErrorIs(t, err, tpm.ErrAuthFailed, "the old authValue was right")
			}
			st, err := tp.LockoutStatus(ctx)
			require.NoError(t, err)
			assert.Equal(t, tc.failures, st.Failures, "dictionary-attack counts spent finding out")

			holds, other := oldAuth, newAuth
			if tc.changed {
				holds, other = newAuth, oldAuth
			}
			got, err := tp.ReadSecret(ctx, s, holds)
			require.NoError(t, err, "the TPM holds the authValue the answer names")
			assert.Equal(t, secret, got)
			_, err = tp.ReadSecret(ctx, s, other)
			require.ErrorIs(t, err, tpm.ErrAuthFailed)
			requireOnlyBaseline(t, tp, 0)
			require.NoError(t, tp.ResetLockout(ctx, nil))
		})
	}
}
