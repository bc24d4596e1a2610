package tpm_test

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// pinAuth derives an authValue from a PIN as the container does:
// HMAC-SHA256(salt, PIN).
func pinAuth(salt []byte, pin string) []byte {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(pin))
	return m.Sum(nil)
}

// Nothing secret crosses the TPM interface in clear: not the sealed secret,
// not the PIN or the authValue derived from it, not a key's authValue —
// in commands or in responses, on success and on failure.
func TestSecretsNeverOnTheBus(t *testing.T) {
	tp, rec := tpmtest.OpenRecorded(t)
	ctx := context.Background()
	secret := make([]byte, 32)
	salt := make([]byte, 16)
	_, _ = rand.Read(secret)
	_, _ = rand.Read(salt)
	pin := "worldwide-1234"
	auth := pinAuth(salt, pin)
	wrong := pinAuth(salt, "worldwide-9999")
	keyAuth := make([]byte, 32)
	_, _ = rand.Read(keyAuth)

	b, err := tp.Seal(ctx, secret, auth)
	require.NoError(t, err)
	got, err := tp.Unseal(ctx, b, auth)
	require.NoError(t, err)
	require.Equal(t, secret, got)
	_, err = tp.Unseal(ctx, b, wrong)
	require.ErrorIs(t, err, tpm.ErrAuthFailed)
	kb, _, err := tp.CreateKey(ctx, tpm.RSA2048, keyAuth)
	require.NoError(t, err)
	k, err := tp.LoadKey(ctx, kb, keyAuth)
	require.NoError(t, err)
	_, err = k.SignContext(ctx, digestOf("m"), crypto.SHA256)
	require.NoError(t, err)
	require.NoError(t, k.Close())

	require.NotEmpty(t, rec.Exchanges())
	rec.AssertAbsent(t, secret, auth, wrong, []byte(pin), keyAuth,
		auth[:8], secret[:8], secret[len(secret)-8:], keyAuth[:8])
}

// The control: the same recorder does catch secrets when they travel the
// way go-tpm's plain password sessions send them (unsalted, unencrypted).
func TestRecorderCatchesPasswordSessions(t *testing.T) {
	raw := tpmtest.OpenTransport(t)
	rec := tpmtest.NewRecorder(raw)
	secret := []byte("a secret that must not be seen!!")
	auth := pinAuth([]byte("salt"), "1234")

	srk, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		InPublic:      tpm2.New2B(tpm2.ECCSRKTemplate),
	}.Execute(rec)
	require.NoError(t, err)
	defer tpm2.FlushContext{FlushHandle: srk.ObjectHandle}.Execute(raw) //nolint:errcheck
	parent := tpm2.AuthHandle{Handle: srk.ObjectHandle, Name: srk.Name, Auth: tpm2.PasswordAuth(nil)}
	created, err := tpm2.Create{
		ParentHandle: parent,
		InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
			UserAuth: tpm2.TPM2BAuth{Buffer: auth},
			Data:     tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: secret}),
		}},
		InPublic: tpm2.New2B(tpm2.TPMTPublic{
			Type: tpm2.TPMAlgKeyedHash, NameAlg: tpm2.TPMAlgSHA256,
			ObjectAttributes: tpm2.TPMAObject{FixedTPM: true, FixedParent: true, UserWithAuth: true},
		}),
	}.Execute(rec)
	require.NoError(t, err)

	where, err := rec.Find(secret)
	require.NoError(t, err)
	assert.NotEmpty(t, where, "the secret in a plain TPM2_Create")
	where, err = rec.Find(auth)
	require.NoError(t, err)
	assert.NotEmpty(t, where, "the authValue in a plain TPM2_Create")

	rec.Reset()
	loaded, err := tpm2.Load{ParentHandle: parent, InPrivate: created.OutPrivate, InPublic: created.OutPublic}.Execute(rec)
	require.NoError(t, err)
	defer tpm2.FlushContext{FlushHandle: loaded.ObjectHandle}.Execute(raw) //nolint:errcheck
	out, err := tpm2.Unseal{ItemHandle: tpm2.AuthHandle{Handle: loaded.ObjectHandle, Name: loaded.Name, Auth: tpm2.PasswordAuth(auth)}}.Execute(rec)
	require.NoError(t, err)
	require.Equal(t, secret, out.OutData.Buffer)
	where, err = rec.Find(auth)
	require.NoError(t, err)
	assert.Contains(t, where, "command", "a password session sends the authValue")
	where, err = rec.Find(secret)
	require.NoError(t, err)
	assert.Contains(t, where, "response", "an unencrypted TPM2_Unseal returns the secret")
}

// Formatting a TPM or a Key never prints an authValue or a session key.
func TestFormattingHidesSecrets(t *testing.T) {
	tp := tpmtest.Open(t)
	auth := []byte("key-auth-value-secret")
	k := newKey(t, tp, tpm.ECCP256, auth)
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{k, tp, *k} {
			out := fmt.Sprintf(format, v)
			assert.NotContains(t, out, string(auth), format)
			assert.NotContains(t, out, fmt.Sprint(auth[:4]), format)
		}
	}
	assert.Equal(t, "tpm.Key(ECC-P256)", fmt.Sprint(k))
}
