package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/tpm"
)

// statusReport is what 'hello status' shows, and, as is, what
// 'hello status -json' prints. The JSON field names are stable; new fields
// may be added, none renamed or removed. Durations are whole seconds.
type statusReport struct {
	User        string `json:"user"`         // UPN
	UserID      string `json:"user_id"`      // directory object ID
	TenantID    string `json:"tenant_id"`    // tenant ID
	ContainerID string `json:"container_id"` // the container's file in the store
	Generation  uint64 `json:"generation"`
	NgcKeyID    string `json:"ngc_key_id"` // as dsregcmd prints it
	CanReset    string `json:"can_reset"`  // DestructiveOnly, DestructiveAndNonDestructive, …
	LoginKey    string `json:"login_key"`  // RSA-2048 or ECC-P256
	PINRecovery struct {
		Enrolled     bool   `json:"enrolled"`
		Scheme       string `json:"scheme,omitempty"`
		ServiceKeyID string `json:"service_key_id,omitempty"`
	} `json:"pin_recovery"`
	EnablePINRecoveryPolicy bool `json:"enable_pin_recovery_policy"`
	PINPolicy               struct {
		Description string `json:"description"`
		Managed     bool   `json:"managed"` // set by device management, not the container's own
	} `json:"pin_policy"`
	PINExpires   string        `json:"pin_expires,omitempty"` // YYYY-MM-DD; absent: never
	Certificates int           `json:"certificates"`
	Lockout      lockoutReport `json:"lockout"`
	// Protections in force, by stable name; each says whether it is on
	// and how. Text output lists them in protectionOrder.
	Protections map[string]protection `json:"protections"`
	TPM         string                `json:"tpm"`       // the TPM spec used
	StateDir    string                `json:"state_dir"` // the state directory
}

// lockoutReport is the TPM's dictionary-attack state.
type lockoutReport struct {
	Locked    bool   `json:"locked"`
	Failures  uint32 `json:"failures"`   // wrong PINs the TPM still counts
	MaxTries  uint32 `json:"max_tries"`  // failures that lock it
	TriesLeft int    `json:"tries_left"` // wrong PINs before it locks
	// RecoverySeconds: the TPM forgives one failure per interval.
	RecoverySeconds int64 `json:"recovery_seconds"`
	// NextTrySeconds: when locked, at most this long until a PIN can be
	// tried again; 0 when not locked.
	NextTrySeconds int64 `json:"next_try_seconds"`
}

// protection is one defence and whether it is in force.
type protection struct {
	On     bool   `json:"on"`
	Detail string `json:"detail"`
}

// protectionOrder is the order of the text output; a protection not
// listed here is printed after these, by name.
var protectionOrder = []string{"dictionary_attack", "tpm_binding", "bus_encryption", "pin_policy", "recovery_binding", "rollback"}

func cmdStatus() *command {
	var asJSON bool
	return &command{
		name: "status", args: "[-json]",
		summary: "Show the User State block, as dsregcmd /status prints it, the lockout state and the protections in force.",
		flags:   boolFlag(&asJSON, "json", "print the status as one JSON object (stable field names)"),
		run: func(ctx context.Context, a *app, _ *flag.FlagSet) error {
			st, _, c, err := a.loadContainer()
			if err != nil {
				return err
			}
			managed, err := st.pinPolicy()
			if err != nil {
				return err
			}
			t, spec, err := a.openTPM(st)
			if err != nil {
				return err
			}
			defer t.Close()
			ls, err := t.LockoutStatus(ctx)
			if err != nil {
				return fmt.Errorf("read the TPM's lockout state: %w", err)
			}
			r := report(st, c, managed, spec, ls)
			if asJSON {
				out, err := json.MarshalIndent(r, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%s\n", out)
				return nil
			}
			a.printState(c)
			printReport(a, r)
			return nil
		},
	}
}

func report(st *state, c *container.Container, managed *container.PINPolicy, spec string, ls tpm.LockoutStatus) statusReport {
	cfg := c.Config()
	us := c.UserState()
	r := statusReport{
		User: cfg.User, UserID: cfg.UserID, TenantID: cfg.TenantID,
		ContainerID: c.ID(), Generation: c.Generation(), NgcKeyID: c.KeyID(),
		CanReset: us.CanReset.String(), LoginKey: cfg.Algorithm.String(),
		EnablePINRecoveryPolicy: st.dev.EnablePINRecovery,
		Certificates:            len(c.Certificates()),
		TPM:                     spec, StateDir: st.dir,
	}
	env := c.Envelope()
	if env != nil {
		r.PINRecovery.Enrolled = true
		r.PINRecovery.Scheme = env.Scheme().String()
		r.PINRecovery.ServiceKeyID = env.KeyID()
	}
	policy := pinPolicyFor(managed, c)
	r.PINPolicy.Description, r.PINPolicy.Managed = describePolicy(policy), managed != nil
	// The policy in force, as for PIN policy above and as sign applies it.
	if exp := c.PINExpiresUnder(policy); !exp.IsZero() {
		r.PINExpires = exp.Format(time.DateOnly)
	}
	r.Lockout = lockoutReport{
		Locked: ls.Locked, Failures: ls.Failures, MaxTries: ls.MaxTries,
		TriesLeft: max(ls.Remaining(), 0), RecoverySeconds: int64(ls.Recovery / time.Second),
	}
	if ls.Locked || ls.MaxTries > 0 && ls.Remaining() <= 0 {
		r.Lockout.Locked = true
		r.Lockout.NextTrySeconds = r.Lockout.RecoverySeconds
	}

	da := fmt.Sprintf("every wrong PIN counts in the TPM: %d wrong PINs lock it, one is forgiven every %s",
		ls.MaxTries, ls.Recovery)
	if (spec == "sim" || strings.HasPrefix(spec, "sim:")) && !strings.HasPrefix(spec, simStatePrefix) {
		da += " (this simulator starts afresh in every run, so counts do not carry over)"
	}
	r.Protections = map[string]protection{
		"dictionary_attack": {On: true, Detail: da},
		"tpm_binding": {On: true, Detail: "the keys and the PIN protector load only in the TPM that made them; " +
			"its storage root key is pinned in the container"},
		"bus_encryption": {On: true, Detail: "PIN authorizations are HMACs and secrets travel encrypted, in a session salted to the storage root key"},
		"pin_policy":     {On: true, Detail: describePolicy(policy)},
	}
	if env != nil {
		r.Protections["recovery_binding"] = protection{On: true,
			Detail: "the PIN reset protector opens only for this tenant, user and container"}
	} else {
		r.Protections["recovery_binding"] = protection{On: false, Detail: "no PIN reset protector enrolled"}
	}
	if rb := c.RollbackProtection(); rb.On {
		r.Protections["rollback"] = protection{On: true,
			Detail: "the container secret is in an NV index under the current PIN: the TPM refuses old copies with their old PIN"}
	} else {
		r.Protections["rollback"] = protection{On: false, Detail: rb.Reason}
	}
	return r
}

func printReport(a *app, r statusReport) {
	line := func(k, v string) { fmt.Fprintf(a.stdout, "%26s : %s\n", k, v) }
	fmt.Fprintln(a.stdout)
	line("User", r.User)
	line("Container", fmt.Sprintf("%s (generation %d)", r.ContainerID, r.Generation))
	line("Login key", r.LoginKey)
	if r.PINRecovery.Enrolled {
		line("PIN recovery", fmt.Sprintf("enrolled (%s, service key %s)", r.PINRecovery.Scheme, r.PINRecovery.ServiceKeyID))
	} else {
		line("PIN recovery", "not enrolled")
	}
	line("EnablePinRecovery policy", onOff(r.EnablePINRecoveryPolicy))
	if r.PINPolicy.Managed {
		line("PIN policy", r.PINPolicy.Description+" (managed by the device)")
	} else {
		line("PIN policy", r.PINPolicy.Description+" (the container's)")
	}
	if r.PINExpires != "" {
		line("PIN expires", r.PINExpires+" (then 'hello sign' asks for a new PIN: 'hello change-pin')")
	} else {
		line("PIN expires", "never")
	}
	line("Certificates", fmt.Sprint(r.Certificates))
	l := r.Lockout
	if l.Locked {
		line("PIN tries left", fmt.Sprintf("none: the TPM is locked; next try in at most %s", time.Duration(l.NextTrySeconds)*time.Second))
	} else {
		line("PIN tries left", fmt.Sprintf("%d of %d (one failure forgiven every %s)", l.TriesLeft, l.MaxTries, time.Duration(l.RecoverySeconds)*time.Second))
	}
	if rb := r.Protections["rollback"]; rb.On {
		line("Rollback protection", "on")
	} else {
		line("Rollback protection", "off ("+rb.Detail+")")
	}
	line("TPM", r.TPM)
	line("State directory", r.StateDir)
	fmt.Fprintln(a.stdout)
	fmt.Fprintln(a.stdout, "Protections:")
	names := append([]string(nil), protectionOrder...)
	for name := range r.Protections {
		if !contains(names, name) {
			names = append(names, name)
		}
	}
	for _, name := range names {
		p, ok := r.Protections[name]
		if !ok {
			continue
		}
		line(strings.ReplaceAll(name, "_", " "), onOff(p.On)+": "+p.Detail)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
