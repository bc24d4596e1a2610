// Command quickstart tells the story of the Windows Hello for Business PIN
// reset documentation, in order, on the embedded TPM 2.0 simulator:
//
//  1. a tenant onboarded to the PIN reset service, a user with a password and
//     a TOTP authenticator, a joined device, and a Hello container (RSA-2048
//     login key) whose key is registered as Windows registers it (POST
//     /EnrollmentServer/key/ on the same server as the PIN reset service)
//     and held as an msDS-KeyCredentialLink value; the key signs, and signs
//     the user in (an assertion over the directory's nonce: amr ngcmfa);
//     CanReset reads DestructiveOnly;
//  2. the EnablePinRecovery policy turned on and the PIN reset protector
//     enrolled; CanReset reads DestructiveAndNonDestructive;
//  3. wrong PINs, each counted by the TPM's dictionary-attack protection;
//  4. "I forgot my PIN": password and MFA, an access token, and a
//     non-destructive reset through the PIN reset service on loopback — the
//     NgcKeyId and the keys are kept;
//  5. a destructive reset: a new login key and NgcKeyId, registered with the
//     directory, whose msDS-KeyCredentialLink value replaces the old one;
//     CanReset is back to DestructiveOnly.
//
// After each stage it prints the dsregcmd-style User State block. It needs no
// flags and writes no files:
//
//	go run ./examples/quickstart
//	go run ./examples/quickstart -v    # TPM commands per step, timings, peak RSS
package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/device"
	"github.com/hellosim/hellosim/internal/examplecmd"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/idp/drs"
	"github.com/hellosim/hellosim/reset/keycred"
	"github.com/hellosim/hellosim/reset/policy"
	"github.com/hellosim/hellosim/reset/service"
	"github.com/hellosim/hellosim/tpm"
)

// The demo user's secrets. A real user types them; they are constants here so
// that the story reads the same on every run.
const (
	domain   = "contoso.test"
	upn      = "alice@" + domain
	password = "correct horse battery staple"
	firstPIN = "135792"
	resetPIN = "582046"
	lastPIN  = "917364"
)

func main() {
	verbose := flag.Bool("v", false, "print details: TPM commands per step, timings, peak memory")
	examplecmd.ParseFlagsOnly("quickstart", "quickstart: runs the Windows Hello for Business PIN reset story on the embedded TPM simulator.",
		"quickstart [-v]")
	if err := run(context.Background(), os.Stdout, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// story prints the stages and, with -v, what each step cost.
type story struct {
	w       io.Writer
	verbose bool
	tpm     *tpm.TPM
	start   time.Time
}

func (s *story) stage(n int, title string) {
	fmt.Fprintf(s.w, "\n== %d. %s ==\n\n", n, title)
}

// begin starts a step: TPM counters and the timer are zeroed.
func (s *story) begin() {
	s.tpm.ResetStats()
	s.start = time.Now()
}

// done reports a finished step, with its TPM commands and time under -v.
func (s *story) done(format string, args ...any) {
	fmt.Fprintf(s.w, "  - "+format+"\n", args...)
	if !s.verbose {
		return
	}
	fmt.Fprintf(s.w, "      [%s; %s]\n", formatStats(s.tpm.Stats()), time.Since(s.start).Round(100*time.Microsecond))
}

func (s *story) state(c *container.Container) {
	fmt.Fprintln(s.w)
	for _, line := range strings.Split(strings.TrimRight(c.UserState().String(), "\n"), "\n") {
		fmt.Fprintln(s.w, strings.TrimRight("  "+line, " "))
	}
}

func run(ctx context.Context, w io.Writer, verbose bool) error {
	began := time.Now()
	fmt.Fprintln(w, "hellosim quickstart: Windows Hello for Business PIN reset on a TPM 2.0 simulator")

	t, err := tpm.OpenSimulator()
	if err != nil {
		return fmt.Errorf("open simulator: %w", err)
	}
	defer t.Close()
	s := &story{w: w, verbose: verbose, tpm: t}

	// ---- 1. The tenant, the user, the container -------------------------
	s.stage(1, "Provision: Windows Hello for Business with a PIN")
	s.begin()
	// The directory's clock: the wall clock, moved on when the story waits for
	// the authenticator's next code (a code is accepted once, RFC 6238 §5.2).
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	// OWASP's argon2id minimum keeps the demo's peak memory near 70 MiB;
	// the RFC 9106 default takes 64 MiB for every password hashed.
	dir, err := idp.New(idp.WithClock(clock), idp.WithArgon2(idp.LightArgon2Params()))
	if err != nil {
		return err
	}
	tenant, err := dir.AddTenant(idp.TenantConfig{Domain: domain})
	if err != nil {
		return err
	}
	// "Enable the Microsoft PIN Reset Service in your Azure AD tenant": an
	// administrator consents to the PIN Reset Service and the PIN Reset Client.
	if err := dir.Onboard(tenant.ID); err != nil {
		return err
	}
	tenant, err = dir.LookupTenant(tenant.ID)
	if err != nil {
		return err
	}
	user, err := dir.AddUser(idp.UserConfig{TenantID: tenant.ID, UPN: upn, Password: password})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  - tenant %s (%s) onboarded to the PIN reset service: %s\n", tenant.Domain, tenant.ID, yes(tenant.Onboarded()))
	fmt.Fprintf(w, "    admin consent: PIN Reset Service %s, PIN Reset Client %s\n", identity.PINResetServiceAppID, identity.PINResetClientAppID)
	s.done("user %s: password and TOTP authenticator (MFA)", user.UPN)

	s.begin()
	serviceKey, err := protector.GenerateServiceKey(protector.HPKEX25519)
	if err != nil {
		return err
	}
	verifier, err := service.VerifierFor(dir)
	if err != nil {
		return err
	}
	svc, err := service.New(service.Config{Verifier: verifier, Directory: dir, Keys: []protector.Unwrapper{serviceKey}, Clock: clock})
	if err != nil {
		return err
	}
	// One server, as in the example deployment: the PIN reset service and
	// the directory's device registration endpoint for Hello keys.
	mux := http.NewServeMux()
	mux.Handle("/", svc)
	mux.Handle(drs.KeyPath, drs.Handler(dir))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	s.done("PIN reset service listening on %s (service key %s), with the device registration service", srv.URL, serviceKey.Public().ID())

	// The device joins the tenant: a TPM key of its own (no PIN, noDA),
	// registered with the directory as the device object by the user's
	// first sign-in with MFA. The service releases a protector only to a
	// request signed by it (DPoP).
	s.begin()
	dev, err := device.Join(ctx, t, nil)
	if err != nil {
		return fmt.Errorf("join device: %w", err)
	}
	devKey, err := dev.Signer(ctx, t)
	if err != nil {
		return err
	}
	defer devKey.Close()
	_, joinToken, err := signIn(ctx, dir, user, nil)
	if err != nil {
		return err
	}
	if err := dir.RegisterDevice(ctx, joinToken, dev.ID(), dev.PublicKey()); err != nil {
		return fmt.Errorf("register device: %w", err)
	}
	client := service.NewClient(srv.URL, srv.Client()).WithDevice(devKey).WithClock(clock)
	bound := &deviceBinding{dir: dir, dev: dev, key: devKey, now: clock}
	s.done("device joined: TPM-bound P-256 device key, device object %s", dev.ID())
	pc, err := dir.AddDevice(idp.DeviceConfig{TenantID: tenant.ID, DeviceID: dev.ID(), DisplayName: "DESKTOP-QUICKSTART", JoinType: identity.AzureADJoined})
	if err != nil {
		return err
	}
	// The device registration client takes the device-bound DRS token of
	// the latest sign-in: Windows asks for it from the signed-in session.
	// The token is bound to the device key (cnf.jkt), so every request
	// carries a DPoP proof of that key: a token read off the wire
	// registers nothing without the device's TPM.
	var session *idp.Pending
	drsClient, err := drs.NewClient(srv.URL, srv.Client())
	if err != nil {
		return err
	}
	drsClient = drsClient.WithDevice(devKey).WithClock(clock)
	drsClient.Token = func(ctx context.Context) (string, error) {
		return session.DeviceToken(ctx, pc.DeviceID, idp.DRSResource)
	}
	fmt.Fprintf(w, "  - device %s joined: device object %s\n", pc.DisplayName, pc.DeviceID)

	s.begin()
	cfg := container.Config{User: user.UPN, UserID: user.ObjectID, TenantID: user.TenantID, Algorithm: tpm.RSA2048}
	c, err := container.Provision(ctx, t, cfg, firstPIN)
	if err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	s.done("container provisioned: %s login key, NgcKeyId %s", cfg.Algorithm, c.KeyID())

	s.begin()
	offset.Add(int64(idp.TOTPPeriod)) // the join used the authenticator's code
	if session, _, err = signIn(ctx, dir, user, bound); err != nil {
		return err
	}
	offset.Add(int64(idp.TOTPPeriod)) // the next sign-in needs the authenticator's next code
	drsToken, err := session.DeviceToken(ctx, pc.DeviceID, idp.DRSResource)
	if err != nil {
		return err
	}
	registered, err := drsClient.RegisterHelloKey(ctx, drsToken, c.PublicKey())
	if err != nil {
		return fmt.Errorf("register the login key: %w", err)
	}
	s.done("login key registered: POST %s with kngc (RSA1 blob), DRS token with deviceid and ngcmfa, DPoP proof of the device key -> kid %s", drs.KeyPath, registered.KID)
	if err := showKeyCredentialLink(w, dir, user.UPN); err != nil {
		return err
	}

	s.begin()
	loginKey := c.PublicKey() // the public key the directory knows
	msg := "sign-in challenge 1"
	if err := signAndVerify(ctx, t, c, firstPIN, msg, loginKey); err != nil {
		return err
	}
	s.done("unlocked with the PIN, signed %q: the signature verifies", msg)
	s.begin()
	amr, err := helloSignIn(ctx, t, dir, c, firstPIN, user)
	if err != nil {
		return err
	}
	s.done("signed in with the Hello key: the PIN unlocked the key that signed the directory's nonce -> token with amr %v", amr)

	device := reset.Device{
		Join: identity.AzureADJoined, Trust: identity.CloudKerberosTrust, Edition: reset.Enterprise,
		Version: reset.Windows11v23H2, Account: reset.EnterpriseAccount, SignedIn: true,
	}
	rt := reset.Tenant{Tenant: tenant.Tenant}
	clientPolicy := reset.Policy{} // EnablePinRecovery not configured: off
	fmt.Fprintf(w, "  - policy EnablePinRecovery: off; CanReset = %s\n", reset.ContainerCanReset(c, device, clientPolicy, rt))
	s.state(c)

	// ---- 2. EnablePinRecovery: the PIN reset protector ------------------
	s.stage(2, "Policy EnablePinRecovery on: the PIN reset protector")
	setting, err := policy.ParsePINRecoveryOMA("./Vendor/MSFT/Policy/PassportForWork/"+tenant.ID+"/Policies/EnablePinRecovery", "True")
	if err != nil {
		return err
	}
	clientPolicy, err = reset.NewPolicy(tenant.ID, []policy.PINRecoverySetting{setting}, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  - MDM sets %s = True (%s)\n", "./Vendor/MSFT/Policy/PassportForWork/{TenantId}/Policies/EnablePinRecovery", clientPolicy.Source)

	s.begin()
	key, err := client.ServiceKey(ctx)
	if err != nil {
		return fmt.Errorf("fetch service key: %w", err)
	}
	sess, err := container.Unlock(ctx, t, c, firstPIN)
	if err != nil {
		return err
	}
	c, err = sess.EnablePINRecoveryOnDevice(ctx, key, dev.ID())
	sess.Close()
	if err != nil {
		return fmt.Errorf("enable pin recovery: %w", err)
	}
	env := c.Envelope()
	s.done("256-bit protector R made on the client, S encrypted under R, R wrapped to the service key")
	fmt.Fprintf(w, "    envelope: %s, bound to tenant %s, user %s, device %s\n", env.Scheme(), env.Binding().TenantID, env.Binding().UserID, env.Binding().DeviceID)
	fmt.Fprintf(w, "  - CanReset = %s\n", reset.ContainerCanReset(c, device, clientPolicy, rt))
	s.state(c)

	// ---- 3. Wrong PINs ---------------------------------------------------
	s.stage(3, "Wrong PINs: the TPM counts them")
	for _, pin := range []string{"246801", "975310"} {
		s.begin()
		_, err := container.Unlock(ctx, t, c, pin)
		var pe *container.PINError
		if !errors.As(err, &pe) {
			return fmt.Errorf("a wrong PIN was not refused as one: %v", err)
		}
		s.done("PIN refused: %d tries remain before the TPM locks", pe.Remaining)
	}
	fmt.Fprintln(w, "  - the user has forgotten the PIN")

	// ---- 4. Non-destructive reset ---------------------------------------
	s.stage(4, `"I forgot my PIN": non-destructive reset`)
	if err := reset.Check(device, clientPolicy, rt, reset.EntryLockScreen, reset.KindNonDestructive); err != nil {
		return err
	}
	fmt.Fprintln(w, "  - reset.Check: non-destructive reset allowed from the lock screen")
	s.begin()
	offset.Add(int64(idp.TOTPPeriod)) // the authenticator's next code
	_, token, err := signIn(ctx, dir, user, bound)
	if err != nil {
		return err
	}
	s.done("signed in on the device: password, then the authenticator's code -> access token (amr pwd, mfa), DPoP-bound to the device key")

	s.begin()
	oldKeyID := c.KeyID()
	envReset := reset.Env{TPM: t, Service: client, Directory: drsClient}
	n, err := reset.NonDestructive(ctx, envReset, c, reset.Request{Token: token, NewPIN: resetPIN})
	if err != nil {
		return fmt.Errorf("non-destructive reset: %w", err)
	}
	s.done("envelope + token + device proof sent to the service; R came back sealed to a one-time key; new PIN set")
	fmt.Fprintf(w, "  - same NgcKeyId: %s (%s)\n", yes(n.KeyID() == oldKeyID), n.KeyID())

	s.begin()
	if _, err := container.Unlock(ctx, t, n, firstPIN); !errors.Is(err, container.ErrWrongPIN) {
		return fmt.Errorf("old PIN after reset: want ErrWrongPIN, got %v", err)
	}
	s.done("the old PIN no longer unlocks the container")
	s.begin()
	msg = "sign-in challenge 2"
	if err := signAndVerify(ctx, t, n, resetPIN, msg, loginKey); err != nil {
		return err
	}
	s.done("new PIN unlocks; the login key from stage 1 verifies the new signature")
	if _, err := client.Recover(ctx, token, n.Envelope()); errors.Is(err, service.ErrReplay) {
		fmt.Fprintln(w, "  - the same access token, sent again, is refused as a replay")
	}
	if err := retire(ctx, s, t, c, &n, firstPIN); err != nil {
		return err
	}
	c = n
	s.state(c)

	// ---- 5. Destructive reset -------------------------------------------
	s.stage(5, "Destructive reset: new login key, new NgcKeyId")
	s.begin()
	offset.Add(int64(idp.TOTPPeriod)) // 30 s later the authenticator shows its next code
	session, token, err = signIn(ctx, dir, user, bound)
	if err != nil {
		return err
	}
	n, err = reset.Destructive(ctx, envReset, c, reset.Request{Token: token, NewPIN: lastPIN})
	if err != nil {
		return fmt.Errorf("destructive reset: %w", err)
	}
	s.done("signed in again; keys, certificates and protector deleted; new login key and PIN provisioned")
	fmt.Fprintf(w, "  - new NgcKeyId: %s (%s, was %s)\n", yes(n.KeyID() != c.KeyID()), n.KeyID(), c.KeyID())
	newKID, err := keycred.PublicKeyIdentifier(n.PublicKey())
	if err != nil {
		return err
	}
	reg, err := dir.LookupKey(newKID)
	if err != nil {
		return fmt.Errorf("new key not registered: %w", err)
	}
	fmt.Fprintf(w, "  - new public key registered in the directory for %s (kid %s), through the DRS endpoint\n", reg.ObjectID, reg.KID)
	if _, err := dir.LookupKey(registered.KID); errors.Is(err, idp.ErrKeyNotFound) {
		fmt.Fprintln(w, "  - the old key's msDS-KeyCredentialLink value is gone: the new one replaced it")
	}
	if err := showKeyCredentialLink(w, dir, user.UPN); err != nil {
		return err
	}

	s.begin()
	msg = "sign-in challenge 3"
	digest, sig, err := sign(ctx, t, n, lastPIN, msg)
	if err != nil {
		return err
	}
	if verify(loginKey, digest, sig) == nil {
		return errors.New("the old login key verified a signature of the new one")
	}
	if err := verify(n.PublicKey(), digest, sig); err != nil {
		return fmt.Errorf("new login key: %w", err)
	}
	s.done("old login key gone: it does not verify the new key's signature; the new one does")
	if err := retire(ctx, s, t, c, &n, resetPIN); err != nil {
		return err
	}
	s.begin()
	if amr, err = helloSignIn(ctx, t, dir, n, lastPIN, user); err != nil {
		return err
	}
	s.done("signed in with the new Hello key -> token with amr %v", amr)
	fmt.Fprintf(w, "  - CanReset = %s (enrol the protector again to get non-destructive reset back)\n", n.UserState().CanReset)
	s.state(n)

	fmt.Fprintf(w, "\nDone in %s.\n", time.Since(began).Round(time.Millisecond))
	if verbose {
		if rss, ok := peakRSS(); ok {
			fmt.Fprintf(w, "Peak RSS: %.1f MiB\n", float64(rss)/(1<<20))
		}
	}
	return nil
}

// signIn is "complete authentication and multi-factor authentication": the
// password, then the code the user's authenticator app shows; with d,
// the sign-in is bound to the device key. It returns the signed-in
// session too, which device-bound tokens come from.
func signIn(ctx context.Context, dir *idp.IdP, user idp.User, d *deviceBinding) (*idp.Pending, string, error) {
	upn := user.UPN
	pending, err := dir.SignIn(ctx, upn, password)
	if err != nil {
		return nil, "", fmt.Errorf("sign in: %w", err)
	}
	if d != nil {
		// The device's token broker binds the sign-in to the device key.
		proof, err := dir.DeviceProof(d.key, user.TenantID, d.now())
		if err != nil {
			return nil, "", err
		}
		if err := pending.BindDevice(ctx, d.dev.ID(), proof); err != nil {
			return nil, "", fmt.Errorf("bind device: %w", err)
		}
	}
	code, err := dir.TOTPCode(upn) // what the authenticator app shows
	if err != nil {
		return nil, "", err
	}
	token, err := pending.CompleteMFA(ctx, code)
	if err != nil {
		return nil, "", fmt.Errorf("mfa: %w", err)
	}
	return pending, token, nil
}

// helloSignIn unlocks c with pin and signs in with the login key: the
// directory's nonce, an assertion signed by the key (kid = base64 SHA-256
// of its BCRYPT blob), and the token's amr.
func helloSignIn(ctx context.Context, t *tpm.TPM, dir *idp.IdP, c *container.Container, pin string, user idp.User) ([]string, error) {
	sess, err := container.Unlock(ctx, t, c, pin)
	if err != nil {
		return nil, fmt.Errorf("unlock: %w", err)
	}
	defer sess.Close()
	nonce, err := dir.HelloNonce()
	if err != nil {
		return nil, err
	}
	now := dir.Now()
	assertion, err := keycred.SignAssertion(sess.Signer(), keycred.Assertion{
		Issuer: user.UPN, Audience: user.TenantID, Nonce: nonce, Scope: "openid aza ugs",
		IssuedAt: now, Expiry: now.Add(5 * time.Minute),
	})
	if err != nil {
		return nil, err
	}
	tok, err := dir.SignInWithHelloKey(ctx, assertion, idp.DRSResource)
	if err != nil {
		return nil, fmt.Errorf("hello sign-in: %w", err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("hello sign-in: the token is not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var claims struct {
		AMR []string `json:"amr"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return nil, err
	}
	return claims.AMR, nil
}

// showKeyCredentialLink prints the user's msDS-KeyCredentialLink values as
// the directory holds them, each decoded as a directory tool would.
func showKeyCredentialLink(w io.Writer, dir *idp.IdP, upn string) error {
	u, err := dir.DirectoryUser(upn)
	if err != nil {
		return err
	}
	for _, k := range u.Keys {
		kc, _, err := keycred.ParseAttributeValue(k.KeyCredentialLink)
		if err != nil {
			return err
		}
		v := k.KeyCredentialLink
		fmt.Fprintf(w, "    msDS-KeyCredentialLink: %s…%s\n", v[:40], v[len(v)-40:])
		fmt.Fprintf(w, "      %s key, source %s, device %s, created %s\n", kc.Usage, kc.Source, kc.DeviceID, kc.Created.Format(time.RFC3339))
	}
	return nil
}

// deviceBinding is what a sign-in needs to be bound to the device.
type deviceBinding struct {
	dir *idp.IdP
	dev *device.Device
	key crypto.Signer
	now func() time.Time
}

// signAndVerify unlocks c with pin, signs msg with the login key and verifies
// the signature under pub.
func signAndVerify(ctx context.Context, t *tpm.TPM, c *container.Container, pin, msg string, pub crypto.PublicKey) error {
	digest, sig, err := sign(ctx, t, c, pin, msg)
	if err != nil {
		return err
	}
	return verify(pub, digest, sig)
}

// sign unlocks c with pin and signs the SHA-256 of msg with the login key
// (RSA PKCS #1 v1.5 or ECDSA, whatever the key is).
func sign(ctx context.Context, t *tpm.TPM, c *container.Container, pin, msg string) (digest, sig []byte, err error) {
	sess, err := container.Unlock(ctx, t, c, pin)
	if err != nil {
		return nil, nil, fmt.Errorf("unlock: %w", err)
	}
	defer sess.Close()
	d := sha256.Sum256([]byte(msg))
	sig, err = sess.Signer().Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		return nil, nil, fmt.Errorf("sign: %w", err)
	}
	return d[:], sig, nil
}

func verify(pub crypto.PublicKey, digest, sig []byte) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig)
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest, sig) {
			return errors.New("ecdsa: verification error")
		}
		return nil
	}
	return fmt.Errorf("unsupported public key %T", pub)
}

// retire revokes the container a reset replaced, once the new one *n is
// kept (a real client saves it first), and shows that the old one, with
// its PIN, is refused by the TPM from then on: rollback protection.
func retire(ctx context.Context, s *story, t *tpm.TPM, old *container.Container, n **container.Container, oldPIN string) error {
	rb := (*n).RollbackProtection()
	if !rb.On {
		fmt.Fprintf(s.w, "  - rollback protection: %s\n", rb)
		return nil
	}
	s.begin()
	r, err := container.Retire(ctx, t, *n)
	if err != nil {
		return fmt.Errorf("retire: %w", err)
	}
	*n = r
	s.done("new container kept; the one it replaced retired (NV index undefined)")
	s.begin()
	if _, err := container.Unlock(ctx, t, old, oldPIN); !errors.Is(err, container.ErrRevoked) {
		return fmt.Errorf("old container after retire: want ErrRevoked, got %v", err)
	}
	s.done("rollback protection: the old container with its old PIN is refused by the TPM")
	return nil
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// commandNames names the TPM commands this library sends (TPM 2.0 Part 2 §6.5).
var commandNames = map[tpm2.TPMCC]string{
	tpm2.TPMCCCreatePrimary:              "CreatePrimary",
	tpm2.TPMCCCreate:                     "Create",
	tpm2.TPMCCLoad:                       "Load",
	tpm2.TPMCCUnseal:                     "Unseal",
	tpm2.TPMCCSign:                       "Sign",
	tpm2.TPMCCFlushContext:               "FlushContext",
	tpm2.TPMCCStartAuthSession:           "StartAuthSession",
	tpm2.TPMCCGetCapability:              "GetCapability",
	tpm2.TPMCCReadPublic:                 "ReadPublic",
	tpm2.TPMCCDictionaryAttackLockReset:  "DictionaryAttackLockReset",
	tpm2.TPMCCDictionaryAttackParameters: "DictionaryAttackParameters",
	tpm2.TPMCCGetRandom:                  "GetRandom",
	tpm2.TPMCCStartup:                    "Startup",
	tpm2.TPMCCNVDefineSpace:              "NV_DefineSpace",
	tpm2.TPMCCNVUndefineSpace:            "NV_UndefineSpace",
	tpm2.TPMCCNVWrite:                    "NV_Write",
	tpm2.TPMCCNVRead:                     "NV_Read",
	tpm2.TPMCCNVReadPublic:               "NV_ReadPublic",
	tpm2.TPMCCNVChangeAuth:               "NV_ChangeAuth",
	tpm2.TPMCCPolicyCommandCode:          "PolicyCommandCode",
	tpm2.TPMCCPolicyAuthValue:            "PolicyAuthValue",
}

// formatStats renders "5 TPM commands: Create 1, Load 2, …".
func formatStats(st tpm.Stats) string {
	if st.Total() == 0 {
		return "no TPM commands"
	}
	var parts []string
	for _, cc := range slices.Sorted(maps.Keys(st.Commands)) {
		name, ok := commandNames[cc]
		if !ok {
			name = fmt.Sprintf("0x%03X", uint32(cc))
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, st.Commands[cc]))
	}
	noun := "commands"
	if st.Total() == 1 {
		noun = "command"
	}
	return fmt.Sprintf("%d TPM %s: %s", st.Total(), noun, strings.Join(parts, ", "))
}
