package reset_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync/atomic"
	"time"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/device"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/service"
	"github.com/hellosim/hellosim/tpm"
)

// demo is a small world for the examples: a simulated TPM, a directory
// with an onboarded tenant and a user, the device joined to the tenant (its
// TPM key registered as the device object), and the PIN reset service in
// process, its client proving possession of the device key.
type demo struct {
	tpm    *tpm.TPM
	dir    *idp.IdP
	user   idp.User
	device *device.Device
	key    *tpm.Key // the device key
	client *service.Client
	offset *atomic.Int64 // the demo clock's lead on the wall clock
}

// now is the demo's clock: the wall clock, moved on one TOTP step per
// sign-in so that each sign-in has a fresh code.
func (d *demo) now() time.Time { return time.Now().Add(time.Duration(d.offset.Load())) }

const demoPassword = "correct horse battery staple"

func newDemo() *demo {
	tp, err := tpm.OpenSimulator()
	if err != nil {
		log.Fatal(err)
	}
	offset := new(atomic.Int64)
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	dir, err := idp.New(idp.WithArgon2(idp.LightArgon2Params()), idp.WithClock(clock))
	if err != nil {
		log.Fatal(err)
	}
	tenant, err := dir.AddTenant(idp.TenantConfig{
		Domain:        "contoso.test",
		ConsentedApps: []string{identity.PINResetServiceAppID, identity.PINResetClientAppID}, // onboarded: both applications
	})
	if err != nil {
		log.Fatal(err)
	}
	user, err := dir.AddUser(idp.UserConfig{TenantID: tenant.ID, UPN: "alice@contoso.test", Password: demoPassword})
	if err != nil {
		log.Fatal(err)
	}
	key, err := protector.GenerateServiceKey(protector.HPKEX25519)
	if err != nil {
		log.Fatal(err)
	}
	svc, err := service.New(service.Config{Verifier: mustVerifier(dir), Directory: dir, Keys: []protector.Unwrapper{key}, Clock: clock})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	dev, err := device.Join(ctx, tp, nil)
	if err != nil {
		log.Fatal(err)
	}
	dk, err := dev.Signer(ctx, tp)
	if err != nil {
		log.Fatal(err)
	}
	d := &demo{tpm: tp, dir: dir, user: user, device: dev, key: dk, offset: offset,
		client: service.NewInProcess(svc).WithDevice(dk).WithClock(clock)}
	// The user joins the device: a sign-in with MFA registers its key.
	if err := dir.RegisterDevice(ctx, d.signIn(ctx), dev.ID(), dev.PublicKey()); err != nil {
		log.Fatal(err)
	}
	return d
}

// provision makes the user's container with PIN 135792, enrolled for PIN
// recovery when recovery is true (the EnablePinRecovery policy).
func (d *demo) provision(ctx context.Context, recovery bool) *container.Container {
	cfg := container.Config{User: d.user.UPN, UserID: d.user.ObjectID, TenantID: d.user.TenantID}
	c, err := container.Provision(ctx, d.tpm, cfg, "135792")
	if err != nil {
		log.Fatal(err)
	}
	if !recovery {
		return c
	}
	key, err := d.client.ServiceKey(ctx)
	if err != nil {
		log.Fatal(err)
	}
	s, err := container.Unlock(ctx, d.tpm, c, "135792")
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	c, err = s.EnablePINRecoveryOnDevice(ctx, key, d.device.ID())
	if err != nil {
		log.Fatal(err)
	}
	return c
}

// signIn is the user's authentication on the device: password, then the
// code their authenticator app shows; once the device is registered, the
// sign-in is bound to it, so the token is DPoP-bound to the device key.
func (d *demo) signIn(ctx context.Context) string {
	d.offset.Add(int64(idp.TOTPPeriod))
	pending, err := d.dir.SignIn(ctx, d.user.UPN, demoPassword)
	if err != nil {
		log.Fatal(err)
	}
	if dev, err := d.dir.Device(ctx, d.user.TenantID, d.device.ID()); err == nil && dev.Standing == identity.StandingEnabled {
		proof, err := d.dir.DeviceProof(d.key, d.user.TenantID, d.now())
		if err != nil {
			log.Fatal(err)
		}
		if err := pending.BindDevice(ctx, d.device.ID(), proof); err != nil {
			log.Fatal(err)
		}
	}
	code, err := d.dir.TOTPCode(d.user.UPN)
	if err != nil {
		log.Fatal(err)
	}
	token, err := pending.CompleteMFA(ctx, code)
	if err != nil {
		log.Fatal(err)
	}
	return token
}

// A user who forgot the PIN signs in with password and MFA; the PIN reset
// service returns the protector, and the container gets a new PIN with the
// same keys.
func ExampleNonDestructive() {
	ctx := context.Background()
	d := newDemo()
	defer d.tpm.Close()
	c := d.provision(ctx, true)

	token := d.signIn(ctx)
	env := reset.Env{TPM: d.tpm, Service: d.client}
	n, err := reset.NonDestructive(ctx, env, c, reset.Request{Token: token, NewPIN: "582046"})
	if err != nil {
		log.Fatal(err)
	}
	// The caller stores n (store.Store.Save); c stays valid until then.
	fmt.Println("same NgcKeyId:", n.KeyID() == c.KeyID())
	fmt.Println("CanReset:", n.UserState().CanReset)

	_, err = container.Unlock(ctx, d.tpm, n, "135792")
	fmt.Println("old PIN:", err != nil)
	s, err := container.Unlock(ctx, d.tpm, n, "582046")
	if err != nil {
		log.Fatal(err)
	}
	s.Close()
	fmt.Println("new PIN: unlocked")
	// Output:
	// same NgcKeyId: true
	// CanReset: DestructiveAndNonDestructive
	// old PIN: true
	// new PIN: unlocked
}

// Without a PIN reset protector only the destructive reset is possible: a
// new login key, registered with the directory.
func ExampleDestructive() {
	ctx := context.Background()
	d := newDemo()
	defer d.tpm.Close()
	c := d.provision(ctx, false)
	fmt.Println("CanReset:", c.UserState().CanReset)

	token := d.signIn(ctx)
	env := reset.Env{TPM: d.tpm, Directory: d.dir}
	n, err := reset.Destructive(ctx, env, c, reset.Request{Token: token, NewPIN: "582046"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("new NgcKeyId:", n.KeyID() != c.KeyID())
	reg, err := d.dir.LookupKey(n.KeyID())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("registered for:", reg.ObjectID == d.user.ObjectID)
	// Output:
	// CanReset: DestructiveOnly
	// new NgcKeyId: true
	// registered for: true
}

// Check answers whether a reset may start, with the message the user sees.
func ExampleCheck() {
	device := reset.Device{
		Join: identity.HybridAzureADJoined, Trust: identity.KeyTrust,
		Edition: reset.Enterprise, Version: reset.Windows10v22H2, Account: reset.EnterpriseAccount,
		Network: reset.Network{DomainController: true},
	}
	policy := reset.Policy{} // EnablePinRecovery not configured
	tenant := reset.Tenant{Tenant: identity.Tenant{ID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}}

	err := reset.Check(device, policy, tenant, reset.EntryLockScreen, reset.KindDestructive)
	var na *reset.NotAllowedError
	if errors.As(err, &na) {
		fmt.Println(na.Reason)
		fmt.Println(na.Reason.Message())
	}
	fmt.Println(reset.CanReset(device, policy, tenant))
	// Output:
	// hybrid-key-trust-lock-screen
	// You can't reset your PIN from the lock screen on this device. Sign in another way and reset it from Settings.
	// DestructiveOnly
}

// mustVerifier is the PIN reset service's verifier for iss's tokens.
func mustVerifier(iss service.TokenIssuer) *service.JWTVerifier {
	v, err := service.VerifierFor(iss)
	if err != nil {
		panic(err)
	}
	return v
}
