package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hellosim/hellosim/tpm"

	"github.com/hellosim/hellosim/container/event"
)

// Provision creates a Hello container for cfg.User with the given PIN, as
// Windows does when the user sets up Windows Hello for Business:
//
//  1. the PIN is checked against cfg.PINPolicy (ErrPINPolicy);
//  2. a 32-byte container secret S is drawn at random;
//  3. S is put in the TPM under the PIN: in an NV index whose authValue is
//     HMAC-SHA256(salt, NFC(PIN)), DA-protected (rollback protection, see
//     Retire), or, where the TPM keeps no NV (RollbackProtection says why),
//     sealed in a DA-protected sealed-data object with that authValue (the
//     PIN protector);
//  4. the login key (RSA-2048 by default, ECC P-256 on request) is created in
//     the TPM with an authValue derived from S;
//  5. S is wiped.
//
// The container gets a fresh container ID and NgcKeyId, and records the TPM's
// storage root key name so later use can check it is talking to the same TPM.
// Provision emits event.Created (WHfB event 300).
func Provision(ctx context.Context, t *tpm.TPM, cfg Config, pin string, opts ...Option) (*Container, error) {
	o := newOptions(opts)
	if o.policy != nil {
		cfg.PINPolicy = *o.policy
	}
	cfg, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	p := o.enterPIN(pin)
	defer clear(p)
	if err := o.checkPIN(cfg.PINPolicy, p); err != nil {
		return nil, err
	}
	c := &Container{generation: 1, cfg: cfg}
	g, err := newGUID(o.rand)
	if err != nil {
		return nil, fmt.Errorf("container: provision: %w", err)
	}
	c.id = formatGUID(g)
	if err := c.build(ctx, t, p, o); err != nil {
		return nil, fmt.Errorf("container: provision: %w", err)
	}
	o.emit(ctx, c, event.Event{Kind: event.Created})
	return c, nil
}

// Reprovision is the core of a destructive PIN reset (WHfB PIN reset:
// "the user's existing PIN and underlying credentials, including any keys or
// certificates added to their Windows Hello container, are deleted from the
// client and a new login key and PIN are provisioned"). It returns a container
// with the same ID, user, tenant and policy, one generation on, with a new
// secret, a new login key and NgcKeyId, and no certificates, extra keys or PIN
// reset protector. The caller registers the new public key with the directory.
// It emits event.Reset with Destructive set.
//
// The new container records c's NV index as retired: once the caller has
// saved the new container, Retire undefines it, and c, with every copy of
// it, is refused by the TPM from then on. Until then c works as before, so
// a reset that fails or is killed half-way loses nothing.
//
// Nothing of c is authenticated here: Reprovision never holds c's container
// secret, so it cannot check the tag, and it takes c's user, tenant and
// policy as the file says. Pass the policy device management sets with
// WithPINPolicy; the new PIN is then held to it, and the new container
// records it.
func Reprovision(ctx context.Context, t *tpm.TPM, c *Container, newPIN string, opts ...Option) (*Container, error) {
	o := newOptions(opts)
	if c == nil {
		return nil, errors.New("container: reprovision: nil container")
	}
	policy, p, err := o.newPIN(c, newPIN)
	if err != nil {
		return nil, err
	}
	defer clear(p)
	if t == nil {
		return nil, errors.New("container: reprovision: nil TPM")
	}
	finishRetire(ctx, t, c)
	n := &Container{generation: c.generation + 1, id: c.id, cfg: c.Config()}
	n.cfg.PINPolicy = policy
	n.retired = c.pinIndex()
	if err := n.build(ctx, t, p, o); err != nil {
		return nil, fmt.Errorf("container: reprovision: %w", err)
	}
	o.emit(ctx, n, event.Event{Kind: event.Reset, Destructive: true})
	return n, nil
}

// build makes everything but the ID, generation and config: key ID, S, the
// NV index or PIN protector, the login key, the history. When it fails
// after defining an NV index, the index is undefined again.
func (c *Container) build(ctx context.Context, t *tpm.TPM, pin nfcPIN, o options) (err error) {
	if t == nil {
		return errors.New("nil TPM")
	}
	if err := o.checkTPM(ctx, t); err != nil {
		return err
	}
	g, err := newGUID(o.rand)
	if err != nil {
		return err
	}
	c.keyID = "{" + upperGUID(g) + "}"
	now, err := o.timestamp()
	if err != nil {
		return err
	}
	c.created, c.pinSet = now, now
	c.srkName = bytes.Clone(t.SRKName())
	if len(c.srkName) < 2 || len(c.srkName) > maxSRKName {
		return fmt.Errorf("TPM reports an SRK name of %d bytes", len(c.srkName))
	}

	s := make([]byte, secretLen)
	defer clear(s)
	o.see(secretS, s)
	if _, err := io.ReadFull(o.rand, s); err != nil {
		return fmt.Errorf("read random: %w", err)
	}
	if err := c.protectSecret(ctx, t, s, pin, &o); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			c.undefineNew(t)
		}
	}()
	if err := c.setPIN(s, pin, nil, &o); err != nil {
		return err
	}
	auth := o.keyAuth(s, c.id, LoginKeyName)
	defer clear(auth)
	blob, pub, err := t.CreateKey(ctx, c.cfg.Algorithm, auth)
	if err != nil {
		return fmt.Errorf("create login key: %w", err)
	}
	if algOf(pub) != c.cfg.Algorithm {
		return fmt.Errorf("TPM made a login key of another algorithm")
	}
	c.keys = []keyEntry{{name: LoginKeyName, alg: c.cfg.Algorithm, blob: blob}}
	return c.authenticate(s, &o)
}

// setPIN records pin as the PIN set now: the history becomes pin followed
// by prior (most recent first) and the expiration clock restarts. The TPM
// is not involved.
func (c *Container) setPIN(s []byte, pin nfcPIN, prior [][]byte, o *options) error {
	now, err := o.timestamp()
	if err != nil {
		return err
	}
	entry := o.historyMAC(s, c.id, pin)
	defer clear(entry)
	h, err := o.sealHistory(s, c.id, append([][]byte{entry}, prior...), c.cfg.PINPolicy.History)
	if err != nil {
		return err
	}
	c.history = h
	c.pinSet = now
	return nil
}

// timestampOK checks the clock before the TPM is asked anything.
func (o *options) timestampOK() error {
	_, err := o.timestamp()
	return err
}

// timestamp reads the clock for a time the container records. The format
// holds Unix seconds from 0 to 2^62 (Parse refuses anything else), so a
// clock outside that range is refused here, before the TPM is asked
// anything, rather than making a container no one could load again.
func (o *options) timestamp() (time.Time, error) {
	now := o.now().UTC().Truncate(time.Second)
	if u := now.Unix(); u < 0 || u > maxUnixTime {
		return time.Time{}, fmt.Errorf("%w: clock reads %s, outside what a container records (1970 on)", ErrInvalidConfig, now.Format(time.RFC3339))
	}
	return now, nil
}

func upperGUID(g [16]byte) string {
	return fmt.Sprintf("%X-%X-%X-%X-%X", g[0:4], g[4:6], g[6:8], g[8:10], g[10:16])
}
