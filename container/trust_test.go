package container

import (
	"context"
	"crypto/x509"
	"encoding/binary"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// pinDependent are the commands that carry or depend on the PIN, the
// container secret or a new authValue: Create (the PIN protector, a key),
// Load (a blob that is then used with the PIN), Unseal, and the NV
// commands that define, write, read or re-authorize the secret's index.
var pinDependent = map[tpm2.TPMCC]bool{
	tpm2.TPMCCCreate: true, tpm2.TPMCCLoad: true, tpm2.TPMCCUnseal: true,
	tpm2.TPMCCNVDefineSpace: true, tpm2.TPMCCNVWrite: true, tpm2.TPMCCNVRead: true, tpm2.TPMCCNVChangeAuth: true,
}

// ekCertRead reports an NV_Read of an index outside the library's range of
// secret indices: the verification reading EK certificates, which depends
// on nothing secret.
func ekCertRead(cmd []byte) bool {
	if len(cmd) < 18 || tpm2.TPMCC(binary.BigEndian.Uint32(cmd[6:10])) != tpm2.TPMCCNVRead {
		return false
	}
	index := binary.BigEndian.Uint32(cmd[14:18])
	return index < tpm.NVFirst || index > tpm.NVLast
}

// requireNothingPINDependent fails when any recorded command is one of
// pinDependent.
func requireNothingPINDependent(t *testing.T, rec *tpmtest.Recorder) {
	t.Helper()
	for i, e := range rec.Exchanges() {
		if len(e.Command) >= 10 {
			cc := tpm2.TPMCC(binary.BigEndian.Uint32(e.Command[6:10]))
			require.False(t, pinDependent[cc] && !ekCertRead(e.Command), "command %d (%#x) was sent to an untrusted TPM", i, uint32(cc))
		}
	}
}

// operations runs each operation that must check the TPM first on c (made
// on tp, with the protector r enrolled), with opts.
func operations(c *Container, r *protector.Key) map[string]func(context.Context, *tpm.TPM, ...Option) error {
	return map[string]func(context.Context, *tpm.TPM, ...Option) error{
		"Provision": func(ctx context.Context, tp *tpm.TPM, opts ...Option) error {
			_, err := Provision(ctx, tp, testConfig(), testPIN, opts...)
			return err
		},
		"Unlock": func(ctx context.Context, tp *tpm.TPM, opts ...Option) error {
			s, err := Unlock(ctx, tp, c, testPIN, opts...)
			if err == nil {
				s.Close()
			}
			return err
		},
		"ChangePIN": func(ctx context.Context, tp *tpm.TPM, opts ...Option) error {
			_, err := ChangePIN(ctx, tp, c, testPIN, otherPIN, opts...)
			return err
		},
		"ResetPIN": func(ctx context.Context, tp *tpm.TPM, opts ...Option) error {
			_, err := ResetPIN(ctx, tp, c, r, otherPIN, nil, opts...)
			return err
		},
		"Reprovision": func(ctx context.Context, tp *tpm.TPM, opts ...Option) error {
			_, err := Reprovision(ctx, tp, c, otherPIN, opts...)
			return err
		},
	}
}

// enrolled provisions a container with a PIN reset protector and returns
// it with R.
func enrolled(t *testing.T, tp *tpm.TPM) (*Container, *protector.Key) {
	t.Helper()
	svc := newServiceKey(t, protector.HPKEX25519)
	s := unlock(t, tp, provision(t, tp, testConfig()), testPIN)
	e, err := s.EnablePINRecovery(context.Background(), svc.Public())
	require.NoError(t, err)
	r := recovered(t, svc, e)
	t.Cleanup(r.Destroy)
	return e, r
}

func TestEveryOperationRefusesAnUntrustedTPM(t *testing.T) {
	tp, rec := tpmtest.OpenRecorded(t)
	ctx := context.Background()
	c, r := enrolled(t, tp)
	tpmtest.Manufacture(t, tp)
	other, _ := tpmtest.NewCA(t, "another manufacturer", nil, nil, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	untrusted := x509.NewCertPool()
	untrusted.AddCert(other)

	for name, op := range operations(c, r) {
		t.Run(name, func(t *testing.T) {
			before := failures(t, tp)
			rec.Reset()
			err := op(ctx, tp, WithTrustedTPMs(untrusted))
			require.ErrorIs(t, err, tpm.ErrUntrustedTPM)
			var ue *tpm.UntrustedError
			require.ErrorAs(t, err, &ue)
			assert.Equal(t, tpm.EKChainInvalid, ue.Failure)
			requireNothingPINDependent(t, rec)
			assert.Equal(t, before, failures(t, tp), "no dictionary-attack count spent")
		})
	}
}

func TestEveryOperationWorksOnATrustedTPMVerifiedOnce(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	c, r := enrolled(t, tp)
	roots := tpmtest.Manufacture(t, tp)
	ops := operations(c, r)
	activations := func() uint64 { return tp.Stats().Commands[tpm2.TPMCCActivateCredential] }
	tp.ResetStats()
	for _, name := range []string{"Unlock", "Provision", "ChangePIN", "ResetPIN", "Reprovision"} {
		require.NoError(t, ops[name](ctx, tp, WithTrustedTPMs(roots)), name)
	}
	assert.EqualValues(t, 1, activations(), "the TPM is verified once per connection")
}

// TestImpostorSRKWithEditedFileIsRefused is the attack docs/SECURITY.md
// describes: an interposer answers for the SRK with its own key, and the
// container file is edited to pin that key's Name. With WithTrustedTPMs
// the unlock is refused before any PIN-dependent command, at no
// dictionary-attack count; without it the PIN-dependent commands go out
// in a session salted to the interposer's key.
func TestImpostorSRKWithEditedFileIsRefused(t *testing.T) {
	// The container, made on the TPM with no one in between.
	next := tpmtest.OpenTransport(t)
	honest := tpmtest.OpenOn(t, next)
	c := provision(t, honest, testConfig())
	roots := tpmtest.Manufacture(t, honest)

	// The same TPM, now behind the impostor.
	imp, err := tpmtest.NewSRKImpostor(next)
	require.NoError(t, err)
	rec := tpmtest.NewRecorder(nopCloser{imp})
	tp, err := tpm.New(rec)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tp.Close() })
	edited := c.clone()
	edited.srkName = imp.Name()
	require.NoError(t, tp.CheckSRK(edited.srkName), "the edited file pins the impostor's key")

	ctx := context.Background()
	before := failures(t, honest)
	rec.Reset()
	_, err = Unlock(ctx, tp, edited, testPIN, WithTrustedTPMs(roots))
	var ue *tpm.UntrustedError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, tpm.SRKUnproven, ue.Failure, "%v", err)
	requireNothingPINDependent(t, rec)
	assert.Equal(t, before, failures(t, honest), "no dictionary-attack count spent")

	// Control: without the check the unseal goes out, in a session whose
	// salt the impostor can read.
	rec.Reset()
	_, err = Unlock(ctx, tp, edited, testPIN)
	require.Error(t, err)
	var unseal bool
	for _, e := range rec.Exchanges() {
		unseal = unseal || pinDependent[tpm2.TPMCC(binary.BigEndian.Uint32(e.Command[6:10]))]
	}
	assert.True(t, unseal, "without WithTrustedTPMs the PIN-dependent read of the secret is sent")
	require.NoError(t, honest.ResetLockout(ctx, nil))
}

// nopCloser keeps a transport open when a TPM on it is closed, so two
// connections can share it one after the other.
type nopCloser struct {
	next interface{ Send([]byte) ([]byte, error) }
}

func (n nopCloser) Send(b []byte) ([]byte, error) { return n.next.Send(b) }

// TestOperationsOnASecondTPM: a container made on one TPM, used on
// another (a genuine one, even): every operation that hands the TPM the
// container secret or a PIN-derived authValue refuses before sending it.
func TestOperationsOnASecondTPM(t *testing.T) {
	if tpmtest.Spec() != "sim" {
		t.Skip("needs two simulators, one after the other")
	}
	ctx := context.Background()
	first, err := tpm.OpenSimulator(tpm.WithSeed(1401))
	require.NoError(t, err)
	c, r := enrolled(t, first)
	require.NoError(t, first.Close())

	second, err := tpm.OpenSimulator(tpm.WithSeed(1402))
	require.NoError(t, err)
	t.Cleanup(func() { _ = second.Close() })
	roots := tpmtest.Manufacture(t, second)
	// The second TPM is genuine: verify it once, so the counts below are
	// the operations' own (the verification reads EK certificates with
	// NV_Read, which is not PIN-dependent).
	_, err = second.VerifyEndorsement(ctx, roots)
	require.NoError(t, err)
	ops := operations(c, r)
	for _, name := range []string{"Unlock", "ChangePIN", "ResetPIN"} {
		for _, opts := range [][]Option{nil, {WithTrustedTPMs(roots)}} {
			second.ResetStats()
			err := ops[name](ctx, second, opts...)
			assert.ErrorIs(t, err, tpm.ErrSRKMismatch, name)
			st := second.Stats()
			for cc := range pinDependent {
				assert.Zero(t, st.Commands[cc], "%s sent %#x to the second TPM", name, uint32(cc))
			}
		}
	}
}

// TestTrustCheckCostsNothingPerOperation: after the one verification of
// the connection, an operation with WithTrustedTPMs sends exactly the
// commands it sends without it.
func TestTrustCheckCostsNothingPerOperation(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	roots := tpmtest.Manufacture(t, tp)
	trusted := WithTrustedTPMs(roots)
	_, err := tp.VerifyEndorsement(ctx, roots)
	require.NoError(t, err)

	count := func(opts ...Option) map[tpm2.TPMCC]uint64 {
		// A fresh container each time: ChangePIN changes the PIN of its
		// secret in the TPM, so c's PIN is otherPIN afterwards.
		c := provision(t, tp, testConfig())
		tp.ResetStats()
		s, err := Unlock(ctx, tp, c, testPIN, opts...)
		require.NoError(t, err)
		require.NoError(t, s.Close())
		_, err = ChangePIN(ctx, tp, c, testPIN, otherPIN, opts...)
		require.NoError(t, err)
		_, err = Provision(ctx, tp, testConfig(), testPIN, opts...)
		require.NoError(t, err)
		return tp.Stats().Commands
	}
	assert.Equal(t, count(), count(trusted))
}

// TestGenuineTPMTrusted runs the operations on the test TPM against the
// roots of its real EK certificate (swtpm's local CA in CI).
func TestGenuineTPMTrusted(t *testing.T) {
	roots := tpmtest.Roots(t)
	tp := openTPM(t)
	c, r := enrolled(t, tp)
	ctx := context.Background()
	ops := operations(c, r)
	for _, name := range []string{"Unlock", "Provision", "ChangePIN", "ResetPIN", "Reprovision"} {
		require.NoError(t, ops[name](ctx, tp, WithTrustedTPMs(roots)), name)
	}
}
