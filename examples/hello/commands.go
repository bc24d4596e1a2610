package main

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/container/store"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/policy"
	"github.com/hellosim/hellosim/tpm"
)

// openState opens the state directory; only provision (create) may make it.
func (a *app) openState(create bool) (*state, error) { return openState(a.stateDir, create) }

// loadContainer opens the state directory and loads the user's container,
// with the store it came from: the start of every command that works on an
// existing container. It writes nothing. With none, the error is
// errNoContainer.
func (a *app) loadContainer() (*state, *store.Store, *container.Container, error) {
	st, err := a.openState(false)
	if err != nil {
		return nil, nil, nil, err
	}
	cs, c, err := st.load()
	if err != nil {
		return nil, nil, nil, err
	}
	return st, cs, c, nil
}

// simStateWait is how long a command waits for another hello command to
// release the simulated TPM (one process at a time).
const simStateWait = 30 * time.Second

// openTPM opens the TPM named by --tpm, or the state's default. The
// simulated TPM serves one command at a time: a command that finds it in
// use says so and waits for it, up to simStateWait.
func (a *app) openTPM(st *state) (*tpm.TPM, string, error) {
	spec := a.tpmSpec
	if spec == "" {
		spec = st.defaultTPM()
	}
	deadline := time.Now().Add(simStateWait)
	for said := false; ; said = true {
		t, err := tpm.Open(spec)
		if err == nil {
			onInterrupt.add(t)
			return t, spec, nil
		}
		if !errors.Is(err, tpm.ErrSimStateLocked) || time.Now().After(deadline) {
			return nil, spec, fmt.Errorf("open TPM %q: %w", spec, err)
		}
		if !said {
			fmt.Fprintf(a.stderr, "The simulated TPM is in use by another hello command; waiting up to %s for it to finish...\n", simStateWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// openUnlockedTPM opens the TPM and checks, before anyone is asked for a
// PIN, that its dictionary-attack protection is not in lockout: a PIN typed
// now could not be tried, and a new PIN could not be used until it ends.
func (a *app) openUnlockedTPM(ctx context.Context, st *state) (*tpm.TPM, string, error) {
	t, spec, err := a.openTPM(st)
	if err != nil {
		return nil, spec, err
	}
	if ls, err := t.LockoutStatus(ctx); err == nil && (ls.Locked || ls.MaxTries > 0 && ls.Remaining() <= 0) {
		t.Close()
		return nil, spec, &container.PINLockedError{RetryAfter: ls.Recovery}
	}
	return t, spec, nil
}

// pinTarget is what a command that asks for the PIN works on: the state,
// the user's container and its store, the PIN options of the managed
// policy, and a TPM that is not in lockout.
type pinTarget struct {
	st    *state
	store *store.Store
	c     *container.Container
	opts  []container.Option
	t     *tpm.TPM
}

// openPINTarget opens a pinTarget in the order that finds mistakes before
// anyone is asked for anything: the state and the container, then check
// (the command's own cheap checks on the state; nil for none), the PIN
// options, and last the TPM. The caller closes p.t.
func (a *app) openPINTarget(ctx context.Context, check func(*state) error) (*pinTarget, error) {
	st, cs, c, err := a.loadContainer()
	if err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(st); err != nil {
			return nil, err
		}
	}
	opts, t, _, err := a.openPINTPM(ctx, st)
	if err != nil {
		return nil, err
	}
	return &pinTarget{st: st, store: cs, c: c, opts: opts, t: t}, nil
}

// openPINTPM reads the PIN options of the managed policy and then opens a
// TPM that is not in lockout: what every command that asks for a PIN needs,
// in the order that finds a bad policy file before the TPM is opened. The
// caller closes t.
func (a *app) openPINTPM(ctx context.Context, st *state) (opts []container.Option, t *tpm.TPM, spec string, err error) {
	if opts, err = st.pinOptions(); err != nil {
		return nil, nil, "", err
	}
	if t, spec, err = a.openUnlockedTPM(ctx, st); err != nil {
		return nil, nil, spec, err
	}
	return opts, t, spec, nil
}

// newProvision is what both provisions, in process and remote, check and
// open before the user is signed in or asked for a PIN: that the user has
// no container yet, the managed PIN policy, and the TPM. The caller closes
// p.t.
type newProvision struct {
	managed *container.PINPolicy
	opts    []container.Option
	t       *tpm.TPM
	spec    string
}

// startProvision opens the state directory (making it) and a
// newProvision in it, cheap checks first, before anything about the user
// is written.
func (a *app) startProvision(ctx context.Context) (*state, *newProvision, error) {
	st, err := a.openState(true)
	if err != nil {
		return nil, nil, err
	}
	if _, c, err := st.load(); err == nil {
		return nil, nil, &alreadyProvisionedError{user: c.Config().User, keyID: c.KeyID()}
	} else if !errors.Is(err, errNoContainer) {
		return nil, nil, err
	}
	managed, err := st.pinPolicy()
	if err != nil {
		return nil, nil, err
	}
	opts, t, spec, err := a.openPINTPM(ctx, st)
	if err != nil {
		return nil, nil, err
	}
	return st, &newProvision{managed: managed, opts: opts, t: t, spec: spec}, nil
}

// provision asks for the new PIN, makes cfg's container in p.t and stores
// it with the device file. The store keeps one container per user: of
// concurrent provisions, exactly one gets here first.
func (p *newProvision) provision(ctx context.Context, a *app, st *state, cfg container.Config) (*container.Container, error) {
	pin, err := a.in.newPIN("New PIN", pinPolicyFor(p.managed, nil).Check)
	if err != nil {
		return nil, err
	}
	c, err := container.Provision(ctx, p.t, cfg, pin, p.opts...)
	if err != nil {
		return nil, err
	}
	cs, err := st.store(true)
	if err != nil {
		return nil, err
	}
	if err := cs.Save(c); err != nil {
		var ue *store.UserHasContainerError
		if errors.As(err, &ue) {
			return nil, &alreadyProvisionedError{user: cfg.User}
		}
		return nil, err
	}
	st.dev.TPM = st.recordTPM(p.spec)
	if err := st.saveDevice(); err != nil {
		return nil, fmt.Errorf("the container is stored, but the device file could not be written: %w", err)
	}
	return c, nil
}

// unlock asks for the PIN and unlocks c, asking again after a wrong PIN,
// as the Windows sign-in does, up to maxTries times: each wrong PIN counts
// toward the TPM's lockout, which ends the tries sooner when it comes.
func (a *app) unlock(ctx context.Context, t *tpm.TPM, c *container.Container, opts []container.Option) (*container.Session, error) {
	var last error
	for try := 1; try <= maxTries; try++ {
		if last != nil {
			fmt.Fprintf(a.stderr, "%s. Try again.\n", sentence(errorLine(last)))
		}
		pin, err := a.in.currentPIN("PIN: ")
		if err != nil {
			return nil, afterTries(last, err)
		}
		s, err := container.Unlock(ctx, t, c, pin, opts...)
		if err == nil {
			return s, nil
		}
		if errors.Is(err, container.ErrPINPolicy) {
			// No PIN of this container looks like that: not a TPM try.
			err = fmt.Errorf("%w (not counted by the TPM: %w)", errNotThePIN, err)
		} else if !errors.Is(err, container.ErrWrongPIN) {
			return nil, err
		}
		last = err
	}
	return nil, last
}

// openSession opens the TPM (not in lockout) and unlocks c with the PIN,
// asked again when wrong. done closes the session and the TPM.
func (a *app) openSession(ctx context.Context, st *state, c *container.Container) (s *container.Session, done func(), err error) {
	opts, t, _, err := a.openPINTPM(ctx, st)
	if err != nil {
		return nil, nil, err
	}
	if s, err = a.unlock(ctx, t, c, opts); err != nil {
		t.Close()
		return nil, nil, err
	}
	return s, func() { s.Close(); t.Close() }, nil
}

// afterTries is the error of a prompt that ended (err) after a refusal
// (last): a cancel is a cancel; running out of input reports the refusal.
func afterTries(last, err error) error {
	if last == nil || errors.Is(err, errCancelled) {
		return err
	}
	return last
}

func (a *app) printState(c *container.Container) {
	fmt.Fprint(a.stdout, c.UserState().String())
}

// confirm asks before a command that destroys something, unless -y.
func (a *app) confirm(yes bool, question string) error {
	if yes {
		return nil
	}
	ok, err := a.in.confirm(question)
	if err != nil {
		return err
	}
	if !ok {
		return errNotConfirmed
	}
	return nil
}

// pinPolicyFor is the policy a new PIN is held to: the device's managed
// one, else the container's (zero for a new container: Windows defaults).
func pinPolicyFor(managed *container.PINPolicy, c *container.Container) container.PINPolicy {
	switch {
	case managed != nil:
		return *managed
	case c != nil:
		return c.Config().PINPolicy
	}
	return container.PINPolicy{}
}

// replacer stores a container in place of the one the command read:
// Store.Replace, a compare-and-swap on the generation read.
type replacer struct {
	store *store.Store
	old   *container.Container
}

func (r replacer) Save(n *container.Container) error { return r.store.Replace(r.old, n) }

var _ reset.Saver = replacer{}

func cmdProvision() *command {
	var user, password, alg string
	var rf remoteFlags
	var sf signInFlags
	return &command{
		name: "provision", args: "[-user UPN] [-password PW] [-alg rsa|ecc] [-directory URL -service URL [-ca FILE] [-device-code] [-no-browser]]",
		summary: "Set up Windows Hello for Business: a TPM login key and a PIN (asked twice).",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&user, "user", "alice@contoso.test", "the user's UPN (first run only: it creates the simulated tenant)")
			fs.StringVar(&password, "password", "", "the user's directory password (first run only; default random)")
			fs.StringVar(&alg, "alg", "rsa", "login key algorithm: rsa (RSA-2048, as Windows) or ecc (ECC P-256)")
			rf.add(fs)
			sf.add(fs)
		},
		run: func(ctx context.Context, a *app, _ *flag.FlagSet) error {
			var ka tpm.KeyAlgorithm
			switch strings.ToLower(alg) {
			case "rsa", "rsa2048", "rsa-2048":
				ka = tpm.RSA2048
			case "ecc", "eccp256", "p256", "p-256":
				ka = tpm.ECCP256
			default:
				return fmt.Errorf("%w: -alg %q: want rsa or ecc", errUsage, alg)
			}
			if rc, ok, err := rf.config(); err != nil {
				return err
			} else if ok {
				a.signIn = sf
				return a.provisionRemote(ctx, rc, ka)
			}
			st, p, err := a.startProvision(ctx)
			if err != nil {
				return err
			}
			defer p.t.Close()
			cl, created, err := st.openCloud(true, user, password)
			if err != nil {
				return err
			}
			if created {
				fmt.Fprintf(a.stdout, "Simulated tenant %s (%s), onboarded to the PIN reset service.\n", cl.info.Domain, cl.info.TenantID)
				fmt.Fprintf(a.stdout, "User %s, password %q, TOTP authenticator (kept in %s; 'hello demo-user' shows them again).\n", cl.info.UPN, cl.info.Password, st.path(directoryFile))
			}
			cfg := container.Config{User: cl.user.UPN, UserID: cl.user.ObjectID, TenantID: cl.user.TenantID, Algorithm: ka}
			c, err := p.provision(ctx, a, st, cfg)
			if err != nil {
				return err
			}
			if err := a.registerLoginKey(ctx, st, cl, p.t, c); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Windows Hello is set up for %s: %s login key on %s.\n", cfg.User, ka, p.spec)
			a.printState(c)
			return nil
		},
	}
}

func cmdSign() *command {
	var msg, file string
	return &command{
		name: "sign", args: "[-m TEXT | -in FILE]",
		summary: "Unlock the container with the PIN and sign the SHA-256 of a message with the login key.",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&msg, "m", "hello", "the message to sign")
			fs.StringVar(&file, "in", "", "sign this file instead of -m")
		},
		run: func(ctx context.Context, a *app, _ *flag.FlagSet) error {
			data := []byte(msg)
			if file != "" {
				var err error
				if data, err = os.ReadFile(file); err != nil {
					return err
				}
			}
			p, err := a.openPINTarget(ctx, nil)
			if err != nil {
				return err
			}
			defer p.t.Close()
			c := p.c
			// The managed policy's Expiration, if any, decides PINExpired.
			s, err := a.unlock(ctx, p.t, c, p.opts)
			if err != nil {
				return err
			}
			defer s.Close()
			digest := sha256.Sum256(data)
			sig, err := s.Signer().Sign(nil, digest[:], crypto.SHA256)
			if err != nil {
				return fmt.Errorf("sign: %w", err)
			}
			kind, err := verify(c.PublicKey(), digest[:], sig)
			if err != nil {
				return fmt.Errorf("the signature does not verify: %w", err)
			}
			fmt.Fprintf(a.stdout, "SHA-256   : %x\n", digest)
			fmt.Fprintf(a.stdout, "Signature : %s (%s)\n", base64.StdEncoding.EncodeToString(sig), kind)
			fmt.Fprintf(a.stdout, "Verified with the login key of NgcKeyId %s.\n", c.KeyID())
			if s.PINExpired() {
				// As Windows does at sign-in: an expired PIN still works,
				// and the user is told to change it (PINComplexity/Expiration).
				fmt.Fprintln(a.stderr, "Your PIN has expired under the PIN policy and must be changed: run 'hello change-pin'.")
			}
			return nil
		},
	}
}

func verify(pub crypto.PublicKey, digest, sig []byte) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "RSA PKCS #1 v1.5", rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig)
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest, sig) {
			return "ECDSA", errors.New("ecdsa: verification error")
		}
		return "ECDSA P-256", nil
	}
	return "", fmt.Errorf("unsupported public key %T", pub)
}

// samePIN compares PINs as the container does: in NFC.
func samePIN(a, b string) bool { return norm.NFC.String(a) == norm.NFC.String(b) }

func cmdChangePIN() *command {
	return &command{
		name: "change-pin", args: "",
		summary: "Change the PIN: the current PIN, then the new one twice. Keys stay the same.",
		run: func(ctx context.Context, a *app, _ *flag.FlagSet) error {
			var managed *container.PINPolicy
			p, err := a.openPINTarget(ctx, func(st *state) (err error) {
				managed, err = st.pinPolicy()
				return err
			})
			if err != nil {
				return err
			}
			defer p.t.Close()
			t, cs, c, opts := p.t, p.store, p.c, p.opts
			old, err := a.in.currentPIN("Current PIN: ")
			if err != nil {
				return err
			}
			policy := pinPolicyFor(managed, c)
			pin, err := a.in.newPIN("New PIN", func(pin string) error {
				if samePIN(pin, old) {
					return errSamePIN
				}
				return policy.Check(pin)
			})
			if err != nil {
				return err
			}
			// The current PIN is checked by the TPM: asked again when wrong.
			var n *container.Container
			for try := 1; ; try++ {
				n, err = container.ChangePIN(ctx, t, c, old, pin, opts...)
				if err == nil {
					break
				}
				if !errors.Is(err, container.ErrWrongPIN) || try == maxTries {
					return err
				}
				fmt.Fprintf(a.stderr, "%s. Try again.\n", sentence(errorLine(err)))
				again, rerr := a.in.currentPIN("Current PIN: ")
				if rerr != nil {
					return afterTries(err, rerr)
				}
				if samePIN(again, pin) {
					return errSamePIN
				}
				old = again
			}
			if err := cs.Replace(c, n); err != nil {
				return fmt.Errorf("your PIN was not changed: %w", err)
			}
			fmt.Fprintf(a.stdout, "PIN changed. NgcKeyId %s is unchanged.\n", n.KeyID())
			return nil
		},
	}
}

func cmdEnableRecovery() *command {
	return &command{
		name: "enable-recovery", args: "",
		summary: "Turn the EnablePinRecovery policy on and enrol the PIN reset protector (asks for the PIN).",
		run: func(ctx context.Context, a *app, _ *flag.FlagSet) error {
			var cl *cloud
			var rem *remote
			p, err := a.openPINTarget(ctx, func(st *state) (err error) {
				if rc, ok, err := st.readRemote(); err != nil {
					return err
				} else if ok {
					rem, err = newRemote(ctx, rc)
					return err
				}
				cl, err = st.loadCloud()
				return err
			})
			if err != nil {
				return err
			}
			defer p.t.Close()
			st, t, cs, c, opts := p.st, p.t, p.store, p.c, p.opts
			var svc interface {
				ServiceKey(context.Context) (protector.ServiceKey, error)
			}
			var deviceID string
			if rem != nil {
				// The service's key, from GET /v1/keys over HTTPS; the
				// device joined the directory at provision.
				svc = rem.serviceCall
				d, err := st.deviceIdentity(ctx, t)
				if err != nil {
					return err
				}
				deviceID = d.ID()
			} else {
				svc = cl.client
				dev, err := st.join(ctx, t, cl)
				if err != nil {
					return err
				}
				dev.key.Close()
				deviceID = dev.dev.ID()
			}
			key, err := svc.ServiceKey(ctx)
			if err != nil {
				return fmt.Errorf("fetch the PIN reset service key: %w", err)
			}
			s, err := a.unlock(ctx, t, c, opts)
			if err != nil {
				return err
			}
			n, err := s.EnablePINRecoveryOnDevice(ctx, key, deviceID)
			s.Close()
			if err != nil {
				return err
			}
			if err := cs.Replace(c, n); err != nil {
				return fmt.Errorf("PIN recovery was not enabled: %w", err)
			}
			st.dev.EnablePINRecovery = true
			if err := st.saveDevice(); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "PIN recovery enabled: protector wrapped to service key %s.\n", key.ID())
			a.printState(n)
			return nil
		},
	}
}

// mfa completes the second factor, asking again after a wrong code (up to
// maxTries, as many as the IdP accepts for one sign-in), and refusing a
// code of a time step already used in an earlier run.
type mfa struct {
	a       *app
	st      *state
	secret  string
	pending *idp.Pending
}

func (m *mfa) CompleteMFA(ctx context.Context, code string) (string, error) {
	for try := 1; ; try++ {
		tok, err := m.complete(ctx, code)
		if err == nil {
			return tok, nil
		}
		if !errors.Is(err, idp.ErrWrongCode) || try == maxTries {
			return "", err
		}
		fmt.Fprintf(m.a.stderr, "  %s Try again.\n", explainFlow(err))
		if code, err = m.a.in.line(codePrompt); err != nil {
			return "", err
		}
	}
}

func (m *mfa) complete(ctx context.Context, code string) (string, error) {
	step, known := totpStep(m.secret, code, time.Now())
	if known {
		info, err := m.st.directory()
		if err != nil {
			return "", err
		}
		if step <= info.TOTPLastStep {
			return "", errCodeUsed
		}
	}
	tok, err := m.pending.CompleteMFA(ctx, code)
	if err != nil {
		return "", err
	}
	if known {
		if err := m.st.useTOTPStep(step); err != nil {
			return "", err
		}
	}
	return tok, nil
}

// totpStep is the RFC 6238 time step whose code is code, among the steps
// the IdP accepts at now (one either side).
func totpStep(secret, code string, now time.Time) (int64, bool) {
	period := int64(idp.TOTPPeriod / time.Second)
	for _, d := range []int64{0, -1, 1} {
		at := time.Unix((now.Unix()/period+d)*period, 0)
		if c, err := idp.TOTPCodeAt(secret, at); err == nil && c == code {
			return at.Unix() / period, true
		}
	}
	return 0, false
}

func cmdReset() *command {
	var destructive, nonDestructive, yes bool
	var entry, webHost, allowedURLs, hostMap string
	var sf signInFlags
	return &command{
		name: "reset", args: "--non-destructive | --destructive [-y] [-entry settings|lock-screen [-web-host chromium [-web-signin-allowed-urls LIST] [-web-host-map MAP]]] [-device-code] [-no-browser]",
		summary: `"I forgot my PIN": sign in with password and MFA, choose a new PIN, and reset.`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&nonDestructive, "non-destructive", false, "keep the keys; needs the PIN reset protector (enable-recovery)")
			fs.BoolVar(&destructive, "destructive", false, "delete the keys and certificates; new login key, NgcKeyId and PIN")
			fs.BoolVar(&yes, "y", false, "do not ask for confirmation before a destructive reset")
			fs.StringVar(&entry, "entry", "settings", "where the reset starts: settings or lock-screen")
			fs.StringVar(&webHost, "web-host", "", "with -entry lock-screen and -directory: open the sign-in page in the lock-screen web host (chromium), which opens only Microsoft's sign-in hosts and -web-signin-allowed-urls")
			fs.StringVar(&allowedURLs, "web-signin-allowed-urls", "", "ConfigureWebSignInAllowedUrls: semicolon-delimited hosts the web host may open")
			fs.StringVar(&hostMap, "web-host-map", "", "host names the web host resolves to loopback addresses, as NAME=127.0.0.1:PORT, comma-separated (the directory program's federation host, say); every other name but 127.0.0.1 resolves to nothing")
			sf.add(fs)
		},
		run: func(ctx context.Context, a *app, _ *flag.FlagSet) error {
			var kind reset.Kind
			switch {
			case destructive == nonDestructive:
				return fmt.Errorf("%w: give exactly one of --non-destructive and --destructive", errUsage)
			case destructive:
				kind = reset.KindDestructive
			default:
				kind = reset.KindNonDestructive
			}
			var ep reset.EntryPoint
			if err := ep.UnmarshalText([]byte(entry)); err != nil {
				return fmt.Errorf("%w: -entry %q: want settings or lock-screen", errUsage, entry)
			}
			if err := a.setWebHost(webHost, allowedURLs, hostMap, ep); err != nil {
				return err
			}
			st, cs, c, err := a.loadContainer()
			var de *damagedError
			if errors.As(err, &de) {
				if kind != reset.KindDestructive {
					return &damagedError{path: de.path, err: de.err, needs: "a non-destructive reset needs the container's keys"}
				}
				return a.resetDamaged(ctx, de, yes)
			}
			if err != nil {
				return err
			}
			if rc, ok, err := st.readRemote(); err != nil {
				return err
			} else if ok {
				a.signIn = sf
				return a.resetRemote(ctx, st, rc, cs, c, kind, ep, yes)
			}
			if a.webHost != nil {
				return fmt.Errorf("%w: -web-host needs a directory to sign in at (provision -directory)", errUsage)
			}
			r, err := a.openResetEnv(ctx, st)
			if err != nil {
				return err
			}
			defer r.t.Close()
			cl, pinPolicy, t := r.cl, r.managed, r.t
			if kind == reset.KindDestructive {
				if err := a.confirm(yes, fmt.Sprintf("A destructive reset deletes the keys and certificates of NgcKeyId %s. Continue?", c.KeyID())); err != nil {
					return err
				}
			}
			dev, err := st.join(ctx, t, cl)
			if err != nil {
				return err
			}
			defer dev.key.Close()

			var pending *idp.Pending // the reset's sign-in, for the DRS token
			clientPolicy := reset.Policy{}
			if st.dev.EnablePINRecovery {
				clientPolicy = reset.Policy{EnablePINRecovery: true, Source: policy.DeviceMDM}
			}
			flow := &reset.Flow{
				// The managed PIN policy: the new PIN is held to it, not to
				// the one the (unauthenticated) container file records.
				// A destructive reset registers the new key as provisioning
				// does: through the DRS endpoint, with the reset sign-in's
				// device-bound DRS token.
				Env: reset.Env{TPM: t, Service: dev.client, Directory: cl.drs(&pending, dev), PINPolicy: pinPolicy},
				Device: reset.Device{
					Join: identity.AzureADJoined, Trust: identity.CloudKerberosTrust, Edition: reset.Enterprise,
					Version: reset.Windows11v23H2, Account: reset.EnterpriseAccount, SignedIn: true,
					Network: reset.Network{DomainController: true, FederationService: true},
				},
				Policy: clientPolicy,
				Tenant: reset.Tenant{Tenant: identity.Tenant{ID: cl.info.TenantID, ConsentedApps: []string{identity.PINResetServiceAppID, identity.PINResetClientAppID}}},
				Entry:  ep,
				Kind:   kind,
				Auth: reset.AuthenticatorFunc(func(ctx context.Context, upn, pw string) (reset.MFA, error) {
					p, err := cl.idp.SignIn(ctx, upn, pw)
					if err != nil {
						return nil, err
					}
					pending = p
					if err := dev.bind(ctx, cl, p); err != nil {
						return nil, err
					}
					return &mfa{a: a, st: st, secret: cl.info.TOTPSecret, pending: p}, nil
				}),
				Prompt: prompter{a.in},
				// Replace, not Save: the reset replaces the container read
				// above, and loses (saying so) to any command that saved
				// another generation meanwhile.
				Store:   replacer{store: cs, old: c},
				Explain: explainFlow,
				OnEvent: a.printEvent(nil),
			}
			n, err := flow.Run(ctx, c)
			if err != nil {
				return err
			}
			if err := st.saveObjects(cl); err != nil {
				return err
			}
			return a.finishReset(ctx, st, t, cs, c.KeyID(), n, "")
		},
	}
}

// printEvent is a reset's OnEvent at the terminal: each step's message,
// or the one says has for the step; a new PIN the policy refused goes to
// standard error (it is asked again). The reset itself is said once, by
// finishReset, when it is true: it counts only once the new container is
// stored.
func (a *app) printEvent(says map[reset.Step]string) func(reset.Event) {
	return func(e reset.Event) {
		switch {
		case e.Err != nil:
			if e.Step == reset.StepNewPIN {
				fmt.Fprintf(a.stderr, "  %s\n", e.Message)
			}
		case e.Step == reset.StepReset, e.Step == reset.StepStore, e.Step == reset.StepDone:
		default:
			a.printStep(e.Step, cmp.Or(says[e.Step], e.Message))
		}
	}
}

// printStep says that step of a reset did msg.
func (a *app) printStep(step reset.Step, msg string) {
	fmt.Fprintf(a.stdout, "  %-13s %s\n", step.String()+":", msg)
}

// finishReset retires what the reset of the container oldKeyID replaced
// and says what happened: the same key, or the new one (and registered,
// where it was).
func (a *app) finishReset(ctx context.Context, st *state, t *tpm.TPM, cs *store.Store, oldKeyID string, n *container.Container, registered string) error {
	n, err := retire(ctx, t, cs, n)
	if err != nil {
		return err
	}
	if n.KeyID() == oldKeyID {
		fmt.Fprintf(a.stdout, "Your PIN was reset. Same NgcKeyId %s: keys and certificates kept. Use your new PIN to sign in.\n", n.KeyID())
	} else {
		fmt.Fprintf(a.stdout, "Your PIN was reset. New NgcKeyId %s (was %s)%s. Use your new PIN to sign in.\n", n.KeyID(), oldKeyID, registered)
		if st.dev.EnablePINRecovery {
			fmt.Fprintln(a.stdout, "The new container has no PIN reset protector: run 'hello enable-recovery' to enrol one.")
		}
	}
	a.printState(n)
	return nil
}

// resetEnv is what a reset works with: the simulated cloud, the managed
// PIN policy (nil for none) and a TPM that is not in lockout.
type resetEnv struct {
	cl      *cloud
	managed *container.PINPolicy
	t       *tpm.TPM
	spec    string
}

// openResetEnv opens a resetEnv, the TPM last. A locked TPM is refused: it
// would lock the new PIN too, so the reset would succeed and the next
// sign-in fail. The caller closes r.t.
func (a *app) openResetEnv(ctx context.Context, st *state) (r resetEnv, err error) {
	if r.cl, err = st.loadCloud(); err != nil {
		return r, err
	}
	if r.managed, err = st.pinPolicy(); err != nil {
		return r, err
	}
	r.t, r.spec, err = a.openUnlockedTPM(ctx, st)
	return r, err
}

// replaceDamaged puts the new container n in the place of the damaged
// files: they go (on this device's store they can only be the user's),
// then n is saved, or discarded from the TPM when it cannot be.
func replaceDamaged(ctx context.Context, st *state, cs *store.Store, t *tpm.TPM, spec string, n *container.Container) error {
	entries, err := cs.Entries()
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Err != nil {
			if err := cs.Delete(e.ID); err != nil {
				return err
			}
		}
	}
	if err := cs.Save(n); err != nil {
		_ = container.Discard(ctx, t, n)
		return fmt.Errorf("your PIN wasn't reset: %w", err)
	}
	st.dev.TPM = st.recordTPM(spec)
	return st.saveDevice()
}

// resetDamaged is a destructive reset of a container whose file is
// damaged, as Windows offers it: the user signs in (password and second
// factor), chooses a new PIN, and gets a new container — new login key and
// NgcKeyId — for the same user, in place of the damaged file; the new key
// is registered with the directory. The damaged file names no NV index it
// can be trusted for, so an index it held is left in the TPM.
func (a *app) resetDamaged(ctx context.Context, de *damagedError, yes bool) error {
	st, err := a.openState(false)
	if err != nil {
		return err
	}
	cs, err := st.store(false)
	if err != nil {
		return err
	}
	if rc, ok, err := st.readRemote(); err != nil {
		return err
	} else if ok {
		return a.resetDamagedRemote(ctx, st, cs, rc, de, yes)
	}
	r, err := a.openResetEnv(ctx, st)
	if err != nil {
		return err
	}
	defer r.t.Close()
	cl, managed, t := r.cl, r.managed, r.t
	opts, err := st.pinOptions()
	if err != nil {
		return err
	}
	if err := a.confirm(yes, fmt.Sprintf("The container file %s is damaged. A destructive reset replaces it with a new login key, NgcKeyId and PIN for %s. Continue?", de.path, cl.info.UPN)); err != nil {
		return err
	}
	dev, err := st.join(ctx, t, cl)
	if err != nil {
		return err
	}
	defer dev.key.Close()
	p := prompter{a.in}
	pw, err := p.Password(ctx, cl.info.UPN)
	if err != nil {
		return err
	}
	pending, err := cl.idp.SignIn(ctx, cl.info.UPN, pw)
	if err == nil {
		err = dev.bind(ctx, cl, pending) // the sign-in names this device, for the DRS token
	}
	if err != nil {
		return &reset.StepError{Step: reset.StepAuthenticate, Message: explainFlow(err), Err: err}
	}
	code, err := p.VerificationCode(ctx, cl.info.UPN)
	if err != nil {
		return err
	}
	if _, err := (&mfa{a: a, st: st, secret: cl.info.TOTPSecret, pending: pending}).CompleteMFA(ctx, code); err != nil {
		return &reset.StepError{Step: reset.StepMFA, Message: explainFlow(err), Err: err}
	}
	pin, err := a.in.newPIN("New PIN", pinPolicyFor(managed, nil).Check)
	if err != nil {
		return err
	}
	cfg := container.Config{User: cl.user.UPN, UserID: cl.user.ObjectID, TenantID: cl.user.TenantID, Algorithm: tpm.RSA2048}
	n, err := container.Provision(ctx, t, cfg, pin, opts...)
	if err != nil {
		return err
	}
	if err := replaceDamaged(ctx, st, cs, t, r.spec, n); err != nil {
		return err
	}
	if err := a.registerWith(ctx, st, cl, dev, pending, n); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Your PIN was reset. New NgcKeyId %s in place of the damaged container. Use your new PIN to sign in.\n", n.KeyID())
	if st.dev.EnablePINRecovery {
		fmt.Fprintln(a.stdout, "The new container has no PIN reset protector: run 'hello enable-recovery' to enrol one.")
	}
	a.printState(n)
	return nil
}

// retire revokes, once the flow has saved n, the container the reset
// replaced (rollback protection), and saves n without the record.
func retire(ctx context.Context, t *tpm.TPM, cs *store.Store, n *container.Container) (*container.Container, error) {
	r, err := container.Retire(ctx, t, n)
	if err != nil {
		return nil, fmt.Errorf("revoke the container the reset replaced (run 'hello reset' again to finish): %w", err)
	}
	if r != n {
		if err := cs.Save(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// openDirectory opens the state directory and reads the simulated
// directory's tenant and user, writing nothing.
func (a *app) openDirectory() (*state, directory, error) {
	st, err := a.openState(false)
	if err != nil {
		return nil, directory{}, err
	}
	info, err := st.directory()
	return st, info, err
}

func cmdTOTP() *command {
	return &command{
		name: "totp", args: "",
		summary: "Print the code the demo user's authenticator app shows now.",
		run: func(_ context.Context, a *app, _ *flag.FlagSet) error {
			_, info, err := a.openDirectory()
			if err != nil {
				return err
			}
			now := time.Now()
			code, err := idp.TOTPCodeAt(info.TOTPSecret, now)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, code)
			period := int64(idp.TOTPPeriod / time.Second)
			if now.Unix()/period <= info.TOTPLastStep {
				next := time.Unix((now.Unix()/period+1)*period, 0).Sub(now).Round(time.Second)
				fmt.Fprintf(a.stderr, "This code was used already; a new one comes in %s.\n", next)
			}
			return nil
		},
	}
}

func cmdDemoUser() *command {
	return &command{
		name: "demo-user", args: "",
		summary: "Show the simulated directory's demo user: name, password, and where the verification codes come from.",
		run: func(_ context.Context, a *app, _ *flag.FlagSet) error {
			st, info, err := a.openDirectory()
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "User              : %s\n", info.UPN)
			fmt.Fprintf(a.stdout, "Password          : %s\n", info.Password)
			fmt.Fprintf(a.stdout, "Verification code : 'hello totp' (the user's authenticator app)\n")
			fmt.Fprintf(a.stdout, "Tenant            : %s (%s)\n", info.Domain, info.TenantID)
			fmt.Fprintf(a.stdout, "Kept in %s (a demonstration: in clear).\n", st.path(directoryFile))
			return nil
		},
	}
}

func cmdDelete() *command {
	var yes bool
	return &command{
		name: "delete", args: "[-y]",
		summary: "Delete the Hello container, like certutil -deleteHelloContainer, even a damaged one, and its NV index in the TPM.",
		flags:   boolFlag(&yes, "y", "do not ask for confirmation"),
		run: func(ctx context.Context, a *app, _ *flag.FlagSet) error {
			st, err := a.openState(false)
			if err != nil {
				return err
			}
			cs, err := st.store(false)
			if err != nil {
				return err
			}
			info, ierr := st.directory()
			if ierr != nil && !errors.Is(ierr, errNoContainer) {
				return ierr
			}
			// The user's container, and every file that does not load: on
			// this device's store a damaged file can only be the user's.
			entries, err := cs.Entries()
			if err != nil {
				return err
			}
			type victim struct {
				id, what string
				c        *container.Container // nil: a damaged file
			}
			var victims []victim
			for _, e := range entries {
				switch {
				case e.Err != nil:
					victims = append(victims, victim{e.ID, fmt.Sprintf("the damaged container file %s", e.Path), nil})
				case ierr == nil && strings.EqualFold(e.TenantID, info.TenantID) && strings.EqualFold(e.UserID, info.ObjectID):
					c, err := cs.Load(e.ID)
					if err != nil {
						return err
					}
					victims = append(victims, victim{e.ID, fmt.Sprintf("the Hello container of %s (NgcKeyId %s)", e.User, c.KeyID()), c})
				}
			}
			if len(victims) == 0 {
				return errNoContainer
			}
			for _, v := range victims {
				if err := a.confirm(yes, "Delete "+v.what+"?"); err != nil {
					return err
				}
			}
			for _, v := range victims {
				if err := deleteContainer(ctx, a, st, cs, v.id, v.c); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
				fmt.Fprintf(a.stdout, "Deleted %s.\n", v.what)
			}
			st.dev.TPM = ""
			return st.saveDevice()
		},
	}
}

// deleteContainer removes a container's file and, when it holds one, its
// NV index in the TPM (Store.Remove). A damaged file names no index it can
// be trusted for: only the file goes, and an index it held is an orphan
// (Store.RemoveOrphans finds it).
func deleteContainer(ctx context.Context, a *app, st *state, cs *store.Store, id string, c *container.Container) error {
	if c == nil || c.NVIndex().IsZero() && c.Retired().IsZero() {
		return cs.Delete(id)
	}
	t, _, err := a.openTPM(st)
	if err != nil {
		return err
	}
	defer t.Close()
	return cs.Remove(ctx, t, id)
}

// describePolicy is a PIN policy in one line, defaults filled in.
func describePolicy(p container.PINPolicy) string {
	minLen, maxLen := p.MinimumLength, p.MaximumLength
	if minLen == 0 {
		minLen = container.DefaultMinPINLength
	}
	if maxLen == 0 {
		maxLen = container.DefaultMaxPINLength
	}
	rule := func(r, def container.CharRule) string {
		if r == container.CharDefault {
			r = def
		}
		return r.String()
	}
	out := fmt.Sprintf("%d to %d characters; digits %s, lowercase %s, uppercase %s, special %s; history %d",
		minLen, maxLen, rule(p.Digits, container.CharRequire), rule(p.LowercaseLetters, container.CharDisallow),
		rule(p.UppercaseLetters, container.CharDisallow), rule(p.SpecialCharacters, container.CharDisallow), p.History)
	if p.Expiration > 0 {
		return out + fmt.Sprintf("; expires after %d days", p.Expiration)
	}
	return out + "; never expires"
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
