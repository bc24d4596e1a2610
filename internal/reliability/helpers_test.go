package reliability

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

const (
	pin1 = "135792"
	pin2 = "246801"
	pin3 = "582046"
)

// testConfig is a container configuration for a test user; ECC P-256 keeps
// TPM key creation fast (RSA-2048 key generation in the simulator takes
// hundreds of milliseconds).
func testConfig(alg tpm.KeyAlgorithm) container.Config {
	return container.Config{
		User:      "alice@contoso.com",
		UserID:    "6d5b1f2e-3c4a-4b8d-9e0f-1a2b3c4d5e6f",
		TenantID:  "72f988bf-86f1-41af-91ab-2d7cd011db47",
		Algorithm: alg,
	}
}

// rawTPM is a library TPM on a wrapped transport plus the raw transport
// behind it, to ask the TPM what the library cannot hide.
type rawTPM struct {
	tp  *tpm.TPM
	raw transport.TPM
	ft  *faultTransport // nil unless faults were asked for
	srk tpm2.TPMHandle
}

// openFaulty opens the test TPM with a fault transport in front of it.
func openFaulty(t *testing.T) *rawTPM {
	t.Helper()
	raw := tpmtest.OpenTransport(t)
	ft := &faultTransport{next: raw}
	tp, err := tpm.New(ft)
	require.NoError(t, err)
	tpmtest.Prepare(t, tp)
	r := &rawTPM{tp: tp, raw: raw, ft: ft}
	objs, _ := r.handles(t)
	require.Len(t, objs, 1, "only the SRK after opening")
	r.srk = objs[0]
	return r
}

// handles asks the TPM (TPM2_GetCapability, TPM_CAP_HANDLES) through the raw
// transport which transient objects and sessions are loaded.
func (r *rawTPM) handles(t testing.TB) (objects, sessions []tpm2.TPMHandle) {
	t.Helper()
	return rawHandles(t, r.raw)
}

func rawHandles(t testing.TB, raw transport.TPM) (objects, sessions []tpm2.TPMHandle) {
	t.Helper()
	get := func(ht tpm2.TPMHT) []tpm2.TPMHandle {
		rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapHandles, Property: uint32(ht) << 24, PropertyCount: 64}.Execute(raw)
		require.NoError(t, err)
		hs, err := rsp.CapabilityData.Data.Handles()
		require.NoError(t, err)
		var out []tpm2.TPMHandle
		for _, h := range hs.Handle {
			if uint32(h)>>24 == uint32(ht) || (ht == tpm2.TPMHTHMACSession && uint32(h)>>24 == uint32(tpm2.TPMHTPolicySession)) {
				out = append(out, h)
			}
		}
		return out
	}
	return get(tpm2.TPMHTTransient), get(tpm2.TPMHTHMACSession)
}

// rawProperty reads the TPM property p (Part 2 §6.13) straight from the TPM.
func rawProperty(t testing.TB, raw transport.TPM, p tpm2.TPMPT) uint32 {
	t.Helper()
	rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapTPMProperties, Property: uint32(p), PropertyCount: 1}.Execute(raw)
	require.NoError(t, err)
	props, err := rsp.CapabilityData.Data.TPMProperties()
	require.NoError(t, err)
	require.NotEmpty(t, props.TPMProperty)
	require.Equal(t, p, props.TPMProperty[0].Property)
	return props.TPMProperty[0].Value
}

// rawLockoutCounter reads TPM_PT_LOCKOUT_COUNTER straight from the TPM.
func rawLockoutCounter(t testing.TB, raw transport.TPM) uint32 {
	return rawProperty(t, raw, tpm2.TPMPTLockoutCounter)
}

// rawInLockout reads TPMA_PERMANENT inLockout (Part 2 §8.6).
func rawInLockout(t testing.TB, raw transport.TPM) bool {
	return rawProperty(t, raw, tpm2.TPMPTPermanent)&(1<<9) != 0 // TPMA_PERMANENT.inLockout is bit 9
}

// flushRaw flushes handles behind the library's back.
func flushRaw(t testing.TB, raw transport.TPM, hs ...tpm2.TPMHandle) {
	t.Helper()
	for _, h := range hs {
		_, err := tpm2.FlushContext{FlushHandle: h}.Execute(raw)
		require.NoError(t, err, "flush %#x", uint32(h))
	}
}

// signAndVerify signs a fresh digest with s and checks the signature with
// pub using the standard library.
func signAndVerify(ctx context.Context, s crypto.Signer, pub crypto.PublicKey, msg string) error {
	d := sha256.Sum256([]byte(msg))
	var sig []byte
	var err error
	if cs, ok := s.(interface {
		SignContext(context.Context, []byte, crypto.SignerOpts) ([]byte, error)
	}); ok {
		sig, err = cs.SignContext(ctx, d[:], crypto.SHA256)
	} else {
		sig, err = s.Sign(rand.Reader, d[:], crypto.SHA256)
	}
	if err != nil {
		return err
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, d[:], sig) {
			return fmt.Errorf("ECDSA signature does not verify")
		}
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(k, crypto.SHA256, d[:], sig); err != nil {
			return fmt.Errorf("RSA signature does not verify: %w", err)
		}
	default:
		return fmt.Errorf("unexpected public key %T", pub)
	}
	return nil
}

// unlockAndSign unlocks c with pin, signs with the login key, verifies the
// signature against c's public key, and closes the session.
func unlockAndSign(ctx context.Context, tp *tpm.TPM, c *container.Container, pin string) error {
	s, err := container.Unlock(ctx, tp, c, pin)
	if err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	serr := signAndVerify(ctx, s.Signer(), c.PublicKey(), "unlock and sign")
	cerr := s.Close()
	if serr != nil {
		return fmt.Errorf("sign: %w", serr)
	}
	if cerr != nil {
		return fmt.Errorf("close: %w", cerr)
	}
	return nil
}

// enrolled provisions a container with pin and enrols it for PIN recovery
// under key.
func enrolled(t testing.TB, tp *tpm.TPM, alg tpm.KeyAlgorithm, pin string, key protector.ServiceKey, opts ...container.Option) *container.Container {
	t.Helper()
	ctx := context.Background()
	c, err := container.Provision(ctx, tp, testConfig(alg), pin, opts...)
	require.NoError(t, err)
	s, err := container.Unlock(ctx, tp, c, pin, opts...)
	require.NoError(t, err)
	defer s.Close()
	c, err = s.EnablePINRecovery(ctx, key)
	require.NoError(t, err)
	return c
}

// anyDevice is a device key for clients of services that do not check
// proofs (the fault-injecting ones here).
var anyDevice = func() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}()
