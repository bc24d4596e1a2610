package reliability

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/tpm"
)

// directService is the PIN reset service reduced to its cryptography: it
// unwraps envelopes with the service's private key, without HTTP or token
// checks. The TPM fault suite uses it so that every failure it sees comes
// from the TPM.
type directService struct{ priv *protector.ServicePrivateKey }

func (d directService) ServiceKey(context.Context) (protector.ServiceKey, error) {
	return d.priv.Public(), nil
}

func (d directService) Recover(_ context.Context, _ string, env *protector.Envelope) (*protector.Key, error) {
	return d.priv.Unwrap(env)
}

var _ reset.Service = directService{}

// faultOp is one library operation under test. prepare runs with faults
// off and returns the operation (run, which the fault hits) and what to do
// after it (done, again with faults off). keys is how many TPM objects the
// operation legitimately leaves loaded between run and done.
type faultOp struct {
	name    string
	prepare func(t *testing.T) (run func(ctx context.Context) (out *container.Container, outPIN string, err error), done func())
}

// faultWorld is what the fault suite works on: the TPM, the input
// container (enrolled for PIN recovery) and its PIN.
type faultWorld struct {
	r    *rawTPM
	base *container.Container
	svc  directService
}

func newFaultWorld(t *testing.T) *faultWorld {
	r := openFaulty(t)
	priv, err := protector.GenerateServiceKey(protector.HPKEX25519)
	require.NoError(t, err)
	base := enrolled(t, r.tp, tpm.ECCP256, pin1, priv.Public())
	return &faultWorld{r: r, base: base, svc: directService{priv}}
}

func (w *faultWorld) ops() []faultOp {
	tp, base := w.r.tp, w.base
	simple := func(name string, f func(ctx context.Context) (*container.Container, string, error)) faultOp {
		return faultOp{name: name, prepare: func(*testing.T) (func(context.Context) (*container.Container, string, error), func()) {
			return f, func() {}
		}}
	}
	return []faultOp{
		simple("provision", func(ctx context.Context) (*container.Container, string, error) {
			c, err := container.Provision(ctx, tp, testConfig(tpm.ECCP256), pin2)
			return c, pin2, err
		}),
		simple("unlock", func(ctx context.Context) (*container.Container, string, error) {
			s, err := container.Unlock(ctx, tp, base, pin1)
			if err != nil {
				return nil, "", err
			}
			return nil, "", s.Close()
		}),
		{name: "sign", prepare: func(t *testing.T) (func(context.Context) (*container.Container, string, error), func()) {
			s, err := container.Unlock(context.Background(), tp, base, pin1)
			require.NoError(t, err)
			return func(ctx context.Context) (*container.Container, string, error) {
					return nil, "", signAndVerify(ctx, s.Signer(), base.PublicKey(), "faulted signature")
				}, func() {
					// The session survives a failed signature: it still signs.
					require.NoError(t, signAndVerify(context.Background(), s.Signer(), base.PublicKey(), "after the fault"), "session no longer signs after a fault")
					require.NoError(t, s.Close())
				}
		}},
		// ChangePIN switches the PIN in the TPM, so each trial works on a
		// container of its own. After a fault ChangePIN says which PIN the
		// TPM holds: when it succeeds, the file from before opens with the
		// new PIN (the result shares its index, checked and removed by the
		// caller); when it fails, with the old PIN; only after
		// ErrPINMayHaveChanged with either, never neither.
		{name: "change-pin", prepare: func(t *testing.T) (func(context.Context) (*container.Container, string, error), func()) {
			fresh, err := container.Provision(context.Background(), tp, testConfig(tpm.ECCP256), pin1)
			require.NoError(t, err)
			var runErr error
			return func(ctx context.Context) (*container.Container, string, error) {
					c, err := container.ChangePIN(ctx, tp, fresh, pin1, pin2)
					runErr = err
					return c, pin2, err
				}, func() {
					ctx := context.Background()
					switch {
					case runErr == nil:
						if err := unlockAndSign(ctx, tp, fresh, pin2); err != nil {
							t.Errorf("change-pin: succeeded, yet the file from before does not open with the new PIN: %v", err)
						}
						return
					case errors.Is(runErr, container.ErrPINMayHaveChanged):
						w.requireOldOrNewPIN(t, fresh, pin1, pin2)
					default:
						if err := unlockAndSign(ctx, tp, fresh, pin1); err != nil {
							t.Errorf("change-pin: failed (%v), yet the file from before does not open with the old PIN: %v", runErr, err)
						}
					}
					w.undefine(t, fresh)
				}
		}},
		simple("enable-recovery", func(ctx context.Context) (*container.Container, string, error) {
			s, err := container.Unlock(ctx, tp, base, pin1)
			if err != nil {
				return nil, "", err
			}
			defer s.Close()
			c, err := s.EnablePINRecovery(ctx, w.svc.priv.Public())
			return c, pin1, err
		}),
		simple("non-destructive-reset", func(ctx context.Context) (*container.Container, string, error) {
			c, err := reset.NonDestructive(ctx, reset.Env{TPM: tp, Service: w.svc}, base, reset.Request{Token: "unused", NewPIN: pin3})
			return c, pin3, err
		}),
		simple("destructive-reset", func(ctx context.Context) (*container.Container, string, error) {
			c, err := reset.Destructive(ctx, reset.Env{TPM: tp}, base, reset.Request{NewPIN: pin3})
			return c, pin3, err
		}),
		// Retire, after a reset the caller saved, revokes the container
		// from before; each trial resets a container of its own. After a
		// fault the new container opens with the new PIN, Retire called
		// again finishes, and the old container is then refused.
		{name: "retire", prepare: func(t *testing.T) (func(context.Context) (*container.Container, string, error), func()) {
			ctx := context.Background()
			old := enrolled(t, tp, tpm.ECCP256, pin1, w.svc.priv.Public())
			n, err := reset.NonDestructive(ctx, reset.Env{TPM: tp, Service: w.svc}, old, reset.Request{Token: "unused", NewPIN: pin3})
			require.NoError(t, err)
			return func(ctx context.Context) (*container.Container, string, error) {
					c, err := container.Retire(ctx, tp, n)
					return c, pin3, err
				}, func() {
					if err := unlockAndSign(ctx, tp, n, pin3); err != nil {
						t.Errorf("retire: the new container does not open after a fault: %v", err)
					}
					if _, err := container.Retire(ctx, tp, n); err != nil {
						t.Errorf("retire: Retire again does not finish: %v", err)
					}
					if _, err := container.Unlock(ctx, tp, old, pin1); !errors.Is(err, container.ErrRevoked) {
						t.Errorf("retire: the old container is not refused after Retire: %v", err)
					}
					w.undefine(t, n)
				}
		}},
	}
}

// requireOldOrNewPIN checks that c, the file from before a PIN change,
// opens with oldPIN or newPIN. A wrong first try is expected when the
// change went through and costs a dictionary-attack count, reset here.
func (w *faultWorld) requireOldOrNewPIN(t *testing.T, c *container.Container, oldPIN, newPIN string) {
	ctx := context.Background()
	err := unlockAndSign(ctx, w.r.tp, c, oldPIN)
	if errors.Is(err, container.ErrWrongPIN) {
		require.NoError(t, w.r.tp.ResetLockout(ctx, nil))
		err = unlockAndSign(ctx, w.r.tp, c, newPIN)
	}
	if err != nil {
		t.Errorf("the container opens with neither the old nor the new PIN: %v", err)
	}
}

// undefine removes c's NV index, so that the suite's trials do not fill NV.
func (w *faultWorld) undefine(t *testing.T, c *container.Container) {
	if c == nil {
		return
	}
	for _, nv := range []tpm.NVSecret{c.NVIndex(), c.Retired()} {
		if !nv.IsZero() {
			require.NoError(t, w.r.tp.UndefineSecret(context.Background(), nv))
		}
	}
}

// faultFinding is one way an operation did not recover from a fault.
type faultFinding struct {
	op   string
	mode faultMode
	n    int
	cc   tpm2.TPMCC
	what string
}

func (f faultFinding) String() string {
	return fmt.Sprintf("%s, %s at command %d (%s): %s", f.op, f.mode, f.n, ccName(f.cc), f.what)
}

// TestTPMFaults fails the N-th TPM command of every operation, for every N
// the operation sends, in each fault mode. After each fault, with faults
// off: the input container still unlocks with its PIN and signs; a result
// that came back unlocks with its PIN; the TPM holds nothing beyond the SRK
// and the shared session, and no NV index beyond those of the input and
// the result; no dictionary-attack count was spent. Where the
// library leaves something loaded, the test flushes it behind the library's
// back (so that later trials start clean) and reports it.
func TestTPMFaults(t *testing.T) {
	modes := []faultMode{faultRC, faultDrop, faultLoseResponse}
	w := newFaultWorld(t)
	r := w.r
	ctx := context.Background()
	trials, findings, nvIndices := 0, 0, 0
	for _, op := range w.ops() {
		for _, mode := range modes {
			t.Run(op.name+"/"+mode.String(), func(t *testing.T) {
				var found []faultFinding
				// Cold: the shared session was lost before the operation,
				// so it starts one (TPM2_StartAuthSession is then among the
				// commands the fault hits). Warm: the session is live.
				for _, cold := range []bool{false, true} {
					if cold && !long() && mode != faultLoseResponse {
						continue // StartAuthSession matters most when its answer is lost
					}
					for n := 1; n <= 64; n++ {
						if cold {
							_, sess := r.handles(t)
							flushRaw(t, r.raw, sess...)
						}
						run, done := op.prepare(t)
						r.ft.arm(mode, n)
						out, outPIN, err := run(ctx)
						fired, cc, _ := r.ft.disarm()
						done()
						if !fired {
							require.NoError(t, err, "%s without a fault", op.name)
							if out != nil && out.NVIndex().Handle != w.base.NVIndex().Handle {
								require.NoError(t, r.tp.UndefineSecret(ctx, out.NVIndex()))
							}
							break
						}
						trials++
						report := func(what string, args ...any) {
							name := op.name
							if cold {
								name += " (session lost before)"
							}
							found = append(found, faultFinding{name, mode, n, cc, fmt.Sprintf(what, args...)})
						}
						if err != nil {
							if errors.Is(err, container.ErrWrongPIN) || errors.Is(err, container.ErrPINLocked) {
								report("a TPM fault surfaced as a PIN error: %v", err)
							}
							for _, p := range []string{pin1, pin2, pin3} {
								if strings.Contains(err.Error(), p) {
									report("error names a PIN: %v", err)
								}
							}
						} else if out != nil {
							if uerr := unlockAndSign(ctx, r.tp, out, outPIN); uerr != nil {
								report("result does not unlock with its PIN: %v", uerr)
							}
						}
						if uerr := unlockAndSign(ctx, r.tp, w.base, pin1); uerr != nil {
							report("input container no longer unlocks: %v", uerr)
						}
						objs, sess := r.handles(t)
						var extra []tpm2.TPMHandle
						for _, h := range objs {
							if h != r.srk {
								extra = append(extra, h)
							}
						}
						if !slices.Contains(objs, r.srk) {
							report("the SRK is gone: objects %s", hexHandles(objs))
						}
						if len(extra) > 0 {
							report("%d transient object(s) left loaded: %s", len(extra), hexHandles(extra))
							flushRaw(t, r.raw, extra...)
						}
						if len(sess) > 1 {
							report("%d sessions loaded, want the one shared session", len(sess))
							flushRaw(t, r.raw, sess...)
						}
						if c := rawLockoutCounter(t, r.raw); c != 0 {
							report("the fault cost %d dictionary-attack count(s)", c)
							require.NoError(t, r.tp.ResetLockout(ctx, nil))
						}
						// NV: the input's index and the result's, nothing
						// else (a fault must not leave an orphan); the
						// result's is then removed for the next trial.
						secrets, serr := r.tp.Secrets(ctx)
						require.NoError(t, serr)
						for _, nv := range secrets {
							if nv.Handle == w.base.NVIndex().Handle {
								continue
							}
							if err == nil && out != nil && (nv.Handle == out.NVIndex().Handle || nv.Handle == out.Retired().Handle) {
								continue
							}
							report("NV index %#x left behind", nv.Handle)
							require.NoError(t, r.tp.UndefineSecret(ctx, nv))
						}
						if err == nil && out != nil && out.NVIndex().Handle != w.base.NVIndex().Handle {
							require.NoError(t, r.tp.UndefineSecret(ctx, out.NVIndex()))
						}
						nvIndices++
					}
				}
				findings += len(found)
				for _, f := range found {
					t.Errorf("%v", f)
				}
			})
		}
	}
	t.Logf("TPM faults: %d trials, %d faults injected, %d findings; NV checked after %d", trials, r.ft.total(), findings, nvIndices)
	require.Positive(t, trials)
}

// hexHandles prints TPM handles as the spec writes them.
func hexHandles(hs []tpm2.TPMHandle) string {
	var b strings.Builder
	for i, h := range hs {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%#08x", uint32(h))
	}
	return b.String()
}

// ccName names the commands the library sends.
func ccName(cc tpm2.TPMCC) string {
	switch cc {
	case tpm2.TPMCCCreate:
		return "TPM2_Create"
	case tpm2.TPMCCLoad:
		return "TPM2_Load"
	case tpm2.TPMCCUnseal:
		return "TPM2_Unseal"
	case tpm2.TPMCCSign:
		return "TPM2_Sign"
	case tpm2.TPMCCFlushContext:
		return "TPM2_FlushContext"
	case tpm2.TPMCCStartAuthSession:
		return "TPM2_StartAuthSession"
	case tpm2.TPMCCGetCapability:
		return "TPM2_GetCapability"
	case tpm2.TPMCCCreatePrimary:
		return "TPM2_CreatePrimary"
	case tpm2.TPMCCNVDefineSpace:
		return "TPM2_NV_DefineSpace"
	case tpm2.TPMCCNVUndefineSpace:
		return "TPM2_NV_UndefineSpace"
	case tpm2.TPMCCNVWrite:
		return "TPM2_NV_Write"
	case tpm2.TPMCCNVRead:
		return "TPM2_NV_Read"
	case tpm2.TPMCCNVChangeAuth:
		return "TPM2_NV_ChangeAuth"
	case tpm2.TPMCCPolicyCommandCode:
		return "TPM2_PolicyCommandCode"
	case tpm2.TPMCCPolicyAuthValue:
		return "TPM2_PolicyAuthValue"
	case tpm2.TPMCCNVReadPublic:
		return "TPM2_NV_ReadPublic"
	}
	return fmt.Sprintf("TPM_CC %#x", uint32(cc))
}
