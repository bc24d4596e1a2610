package main

import (
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

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/policy"
	"github.com/hellosim/hellosim/tpm"
)

func (a *app) openState() (*state, error) { return openState(a.stateDir) }

// loadContainer opens the state directory and loads the device's container,
// with the store it came from: the start of every command that works on an
// existing container. With none, the error is errNoContainer.
func (a *app) loadContainer() (*state, *container.Store, *container.Container, error) {
	st, err := a.openState()
	if err != nil {
		return nil, nil, nil, err
	}
	store, c, err := st.load()
	if err != nil {
		return nil, nil, nil, err
	}
	return st, store, c, nil
}

// openTPM opens the TPM named by --tpm, or the state's default.
func (a *app) openTPM(st *state) (*tpm.TPM, string, error) {
	spec := a.tpmSpec
	if spec == "" {
		spec = st.defaultTPM()
	}
	t, err := tpm.Open(spec)
	if err != nil {
		return nil, spec, fmt.Errorf("open TPM %q: %w", spec, err)
	}
	return t, spec, nil
}

func (a *app) printState(c *container.Container) {
	fmt.Fprint(a.stdout, c.UserState().String())
}

func cmdProvision() *command {
	var user, password, alg string
	return &command{
		name: "provision", args: "[-user UPN] [-password PW] [-alg rsa|ecc]",
		summary: "Set up Windows Hello for Business: a TPM login key and a PIN (asked twice).",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&user, "user", "alice@contoso.test", "the user's UPN (first run only: it creates the simulated tenant)")
			fs.StringVar(&password, "password", "", "the user's directory password (first run only; default random)")
			fs.StringVar(&alg, "alg", "rsa", "login key algorithm: rsa (RSA-2048, as Windows) or ecc (ECC P-256)")
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
			st, err := a.openState()
			if err != nil {
				return err
			}
			if _, c, err := st.load(); err == nil {
				return fmt.Errorf("a Hello container already exists for %s (NgcKeyId %s); run 'hello delete' first", c.Config().User, c.KeyID())
			} else if !errors.Is(err, errNoContainer) {
				return err
			}
			_, statErr := os.Stat(st.path(directoryFile))
			cl, err := st.openCloud(true, user, password)
			if err != nil {
				return err
			}
			if statErr != nil {
				fmt.Fprintf(a.stdout, "Simulated tenant %s (%s), onboarded to the PIN reset service.\n", cl.info.Domain, cl.info.TenantID)
				fmt.Fprintf(a.stdout, "User %s, password %q, TOTP authenticator (kept in %s).\n", cl.info.UPN, cl.info.Password, st.path(directoryFile))
			}
			opts, err := st.pinOptions()
			if err != nil {
				return err
			}
			t, spec, err := a.openTPM(st)
			if err != nil {
				return err
			}
			defer t.Close()
			pin, err := a.in.newPIN("New PIN")
			if err != nil {
				return err
			}
			cfg := container.Config{User: cl.user.UPN, UserID: cl.user.ObjectID, TenantID: cl.user.TenantID, Algorithm: ka}
			c, err := container.Provision(ctx, t, cfg, pin, opts...)
			if err != nil {
				return err
			}
			store, err := st.store()
			if err != nil {
				return err
			}
			if err := store.Save(c); err != nil {
				return err
			}
			st.dev.ContainerID, st.dev.TPM = c.ID(), spec
			if err := st.saveDevice(); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Windows Hello is set up for %s: %s login key on %s.\n", cfg.User, ka, spec)
			a.printState(c)
			return nil
		},
	}
}

func cmdStatus() *command {
	return &command{
		name: "status", args: "",
		summary: "Show the User State block, as dsregcmd /status prints it, and the container's details.",
		run: func(_ context.Context, a *app, _ *flag.FlagSet) error {
			st, _, c, err := a.loadContainer()
			if err != nil {
				return err
			}
			managed, err := st.pinPolicy()
			if err != nil {
				return err
			}
			a.printState(c)
			cfg := c.Config()
			line := func(k, v string) { fmt.Fprintf(a.stdout, "%26s : %s\n", k, v) }
			fmt.Fprintln(a.stdout)
			line("User", cfg.User)
			line("Container", fmt.Sprintf("%s (generation %d)", c.ID(), c.Generation()))
			line("Login key", cfg.Algorithm.String())
			if env := c.Envelope(); env != nil {
				line("PIN recovery", fmt.Sprintf("enrolled (%s, service key %s)", env.Scheme(), env.KeyID()))
			} else {
				line("PIN recovery", "not enrolled")
			}
			line("EnablePinRecovery policy", onOff(st.dev.EnablePINRecovery))
			if managed != nil {
				line("PIN policy", describePolicy(*managed)+" (managed by the device)")
			} else {
				line("PIN policy", describePolicy(cfg.PINPolicy)+" (the container's)")
			}
			if exp := c.PINExpires(); !exp.IsZero() {
				line("PIN expires", exp.Format(time.DateOnly)+" (as recorded; then 'hello sign' asks for a new PIN)")
			} else {
				line("PIN expires", "never")
			}
			line("Certificates", fmt.Sprint(len(c.Certificates())))
			line("TPM", st.defaultTPM())
			line("State directory", st.dir)
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
			st, _, c, err := a.loadContainer()
			if err != nil {
				return err
			}
			opts, err := st.pinOptions()
			if err != nil {
				return err
			}
			t, _, err := a.openTPM(st)
			if err != nil {
				return err
			}
			defer t.Close()
			pin, err := a.in.secret("PIN: ")
			if err != nil {
				return err
			}
			// The managed policy's Expiration, if any, decides PINExpired.
			s, err := container.Unlock(ctx, t, c, pin, opts...)
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

func cmdChangePIN() *command {
	return &command{
		name: "change-pin", args: "",
		summary: "Change the PIN: the current PIN, then the new one twice. Keys stay the same.",
		run: func(ctx context.Context, a *app, _ *flag.FlagSet) error {
			st, store, c, err := a.loadContainer()
			if err != nil {
				return err
			}
			opts, err := st.pinOptions()
			if err != nil {
				return err
			}
			t, _, err := a.openTPM(st)
			if err != nil {
				return err
			}
			defer t.Close()
			old, err := a.in.secret("Current PIN: ")
			if err != nil {
				return err
			}
			pin, err := a.in.newPIN("New PIN")
			if err != nil {
				return err
			}
			n, err := container.ChangePIN(ctx, t, c, old, pin, opts...)
			if err != nil {
				return err
			}
			if err := store.Save(n); err != nil {
				return err
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
			st, store, c, err := a.loadContainer()
			if err != nil {
				return err
			}
			cl, err := st.loadCloud()
			if err != nil {
				return err
			}
			opts, err := st.pinOptions()
			if err != nil {
				return err
			}
			t, _, err := a.openTPM(st)
			if err != nil {
				return err
			}
			defer t.Close()
			pin, err := a.in.secret("PIN: ")
			if err != nil {
				return err
			}
			key, err := cl.client.ServiceKey(ctx)
			if err != nil {
				return fmt.Errorf("fetch the PIN reset service key: %w", err)
			}
			dev, err := st.join(ctx, t, cl)
			if err != nil {
				return err
			}
			defer dev.key.Close()
			s, err := container.Unlock(ctx, t, c, pin, opts...)
			if err != nil {
				return err
			}
			n, err := s.EnablePINRecoveryOnDevice(ctx, key, dev.dev.ID())
			s.Close()
			if err != nil {
				return err
			}
			if err := store.Save(n); err != nil {
				return err
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

func cmdReset() *command {
	var destructive, nonDestructive bool
	var entry string
	return &command{
		name: "reset", args: "--non-destructive | --destructive [-entry settings|lock-screen]",
		summary: `"I forgot my PIN": sign in with password and MFA, choose a new PIN, and reset.`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&nonDestructive, "non-destructive", false, "keep the keys; needs the PIN reset protector (enable-recovery)")
			fs.BoolVar(&destructive, "destructive", false, "delete the keys and certificates; new login key, NgcKeyId and PIN")
			fs.StringVar(&entry, "entry", "settings", "where the reset starts: settings or lock-screen")
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
			st, store, c, err := a.loadContainer()
			if err != nil {
				return err
			}
			cl, err := st.loadCloud()
			if err != nil {
				return err
			}
			pinPolicy, err := st.pinPolicy()
			if err != nil {
				return err
			}
			t, _, err := a.openTPM(st)
			if err != nil {
				return err
			}
			defer t.Close()
			dev, err := st.join(ctx, t, cl)
			if err != nil {
				return err
			}
			defer dev.key.Close()

			clientPolicy := reset.Policy{}
			if st.dev.EnablePINRecovery {
				clientPolicy = reset.Policy{EnablePINRecovery: true, Source: policy.DeviceMDM}
			}
			flow := &reset.Flow{
				// The managed PIN policy: the new PIN is held to it, not to
				// the one the (unauthenticated) container file records.
				Env: reset.Env{TPM: t, Service: dev.client, Directory: cl.idp, PINPolicy: pinPolicy},
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
					if err := dev.bind(ctx, cl, p); err != nil {
						return nil, err
					}
					return p, nil
				}),
				Prompt:  prompter{a.in},
				Store:   store,
				Explain: explainFlow,
				OnEvent: func(e reset.Event) {
					if e.Err == nil {
						fmt.Fprintf(a.stdout, "  %-13s %s\n", e.Step.String()+":", e.Message)
					} else if e.Step == reset.StepNewPIN {
						fmt.Fprintf(a.stderr, "  %s\n", e.Message) // asked again
					}
				},
			}
			oldKeyID := c.KeyID()
			n, err := flow.Run(ctx, c)
			if err != nil {
				return err
			}
			if n.KeyID() == oldKeyID {
				fmt.Fprintf(a.stdout, "Same NgcKeyId %s: keys and certificates kept.\n", n.KeyID())
			} else {
				fmt.Fprintf(a.stdout, "New NgcKeyId %s (was %s).\n", n.KeyID(), oldKeyID)
				if st.dev.EnablePINRecovery {
					fmt.Fprintln(a.stdout, "The new container has no PIN reset protector: run 'hello enable-recovery' to enrol one.")
				}
			}
			a.printState(n)
			return nil
		},
	}
}

func cmdTOTP() *command {
	return &command{
		name: "totp", args: "",
		summary: "Print the code the demo user's authenticator app shows now.",
		run: func(_ context.Context, a *app, _ *flag.FlagSet) error {
			st, err := a.openState()
			if err != nil {
				return err
			}
			info, err := st.directory()
			if err != nil {
				return err
			}
			code, err := idp.TOTPCodeAt(info.TOTPSecret, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, code)
			return nil
		},
	}
}

func cmdDelete() *command {
	return &command{
		name: "delete", args: "",
		summary: "Delete the Hello container, like certutil -deleteHelloContainer. The TPM holds nothing of it.",
		run: func(_ context.Context, a *app, _ *flag.FlagSet) error {
			st, store, c, err := a.loadContainer()
			if err != nil {
				return err
			}
			if err := store.Delete(c.ID()); err != nil {
				return err
			}
			st.dev.ContainerID, st.dev.TPM = "", ""
			if err := st.saveDevice(); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Deleted the Hello container of %s (NgcKeyId %s).\n", c.Config().User, c.KeyID())
			return nil
		},
	}
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
