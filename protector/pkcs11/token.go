//go:build cgo

package pkcs11

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	p11 "github.com/miekg/pkcs11"

	"github.com/hellosim/hellosim/protector"
)

// Token is an open PKCS #11 token holding service keys: a pool of
// logged-in sessions. It is safe for concurrent use.
type Token struct {
	ctx     *p11.Ctx
	slot    uint
	label   string
	observe func(string, time.Duration, error)
	pool    chan p11.SessionHandle
	size    int
	pin     string // to log in again when the token forgot the login

	mu     sync.RWMutex // held for reading by every operation, for writing by Close
	closed bool
}

// Open loads the module, finds the token labelled cfg.TokenLabel, opens
// cfg.Sessions sessions and logs in as the user. PKCS #11 initialises a
// module once per process: open one Token per module, and share it.
func Open(cfg Config) (*Token, error) {
	if cfg.Module == "" || cfg.TokenLabel == "" {
		return nil, errors.New("pkcs11: open: need a module path and a token label")
	}
	ctx := p11.New(cfg.Module)
	if ctx == nil {
		return nil, fmt.Errorf("pkcs11: open: cannot load module %s", cfg.Module)
	}
	if err := ctx.Initialize(); err != nil {
		ctx.Destroy()
		if isCode(err, p11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
			return nil, fmt.Errorf("pkcs11: open: %s is already open in this process: share its Token", cfg.Module)
		}
		return nil, fmt.Errorf("pkcs11: open: initialize: %w", err)
	}
	t := &Token{ctx: ctx, label: cfg.Label, observe: cfg.Observe, size: cfg.Sessions, pin: cfg.PIN}
	if t.label == "" {
		t.label = DefaultLabel
	}
	if t.size <= 0 {
		t.size = 4
	}
	fail := func(err error) (*Token, error) {
		t.shutdown()
		return nil, fmt.Errorf("pkcs11: open: %w", err)
	}
	slot, err := findSlot(ctx, cfg.TokenLabel)
	if err != nil {
		return fail(err)
	}
	t.slot = slot
	t.pool = make(chan p11.SessionHandle, t.size)
	for i := range t.size {
		sh, err := ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
		if err != nil {
			return fail(fmt.Errorf("open session: %w", err))
		}
		if i == 0 {
			// One login serves every session of the application.
			if err := ctx.Login(sh, p11.CKU_USER, cfg.PIN); err != nil && !isCode(err, p11.CKR_USER_ALREADY_LOGGED_IN) {
				t.pool <- sh
				return fail(fmt.Errorf("login: %w", err))
			}
		}
		t.pool <- sh
	}
	return t, nil
}

func findSlot(ctx *p11.Ctx, label string) (uint, error) {
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("slot list: %w", err)
	}
	for _, s := range slots {
		info, err := ctx.GetTokenInfo(s)
		if err != nil {
			continue
		}
		if strings.TrimRight(info.Label, " \x00") == label {
			return s, nil
		}
	}
	return 0, fmt.Errorf("%w: no token labelled %q", ErrTokenNotFound, label)
}

func isCode(err error, code uint) bool {
	var e p11.Error
	return errors.As(err, &e) && uint(e) == code
}

// do runs f on a session of the pool and reports it to Observe. A session
// the token closed or logged out is replaced and f run once more, so the
// Token recovers by itself; every operation it runs is safe to repeat.
func (t *Token) do(op string, f func(sh p11.SessionHandle) error) error {
	return t.doCtx(context.Background(), op, f)
}

// doCtx is do, waiting for a free session no longer than ctx allows.
func (t *Token) doCtx(ctx context.Context, op string, f func(sh p11.SessionHandle) error) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return ErrTokenClosed
	}
	var sh p11.SessionHandle
	select {
	case sh = <-t.pool:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { t.pool <- sh }()
	start := time.Now()
	err := f(sh)
	if sessionLost(err) {
		if nsh, rerr := t.reopen(sh); rerr == nil {
			sh = nsh
			err = f(sh)
		}
	}
	if t.observe != nil {
		t.observe(op, time.Since(start), err)
	}
	return err
}

// Close logs out, closes the sessions and unloads the module. Operations
// in flight finish first.
func (t *Token) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	t.shutdown()
	return nil
}

func (t *Token) shutdown() {
	if t.pool != nil {
		close(t.pool)
		first := true
		for sh := range t.pool {
			if first {
				_ = t.ctx.Logout(sh)
				first = false
			}
			_ = t.ctx.CloseSession(sh)
		}
	}
	_ = t.ctx.Finalize()
	t.ctx.Destroy()
}

// Ping reports whether the token answers: the session and token
// information, for readiness checks. ctx bounds the wait for a free
// session.
func (t *Token) Ping(ctx context.Context) error {
	err := t.doCtx(ctx, "ping", func(sh p11.SessionHandle) error {
		if _, err := t.ctx.GetSessionInfo(sh); err != nil {
			return err
		}
		_, err := t.ctx.GetTokenInfo(t.slot)
		return err
	})
	if err != nil && !errors.Is(err, ErrTokenClosed) {
		return fmt.Errorf("pkcs11: ping: %w", err)
	}
	return err
}

// Key is a service key in the token: a protector.Unwrapper whose private
// operation runs there.
type Key struct {
	protector.Unwrapper
	label     string
	created   time.Time
	priv, pub *object
}

// Created is when the key was generated (from its label).
func (k *Key) Created() time.Time { return k.created }

// Label is the key's CKA_LABEL in the token.
func (k *Key) Label() string { return k.label }

// String names the scheme, key ID and label; never anything secret.
func (k *Key) String() string { return "pkcs11.Key{" + k.Public().String() + " " + k.label + "}" }

const labelTime = "20060102T150405.000000000Z"

// Generate makes a new key pair of scheme s (protector.RSAOAEP3072 or
// protector.HPKEP256) in the token: the private key sensitive, not
// extractable, usable only to decrypt (RSA) or derive (EC). It is the
// newest key, so Keys lists it first: that is rotation.
func (t *Token) Generate(s protector.Scheme) (*Key, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("pkcs11: generate: %w", err)
	}
	created := time.Now().UTC()
	label := t.label + " " + created.Format(labelTime)
	common := func(class uint) []*p11.Attribute {
		return []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, class),
			p11.NewAttribute(p11.CKA_TOKEN, true),
			p11.NewAttribute(p11.CKA_ID, id[:]),
			p11.NewAttribute(p11.CKA_LABEL, label),
		}
	}
	private := append(common(p11.CKO_PRIVATE_KEY),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
		p11.NewAttribute(p11.CKA_SIGN, false),
		p11.NewAttribute(p11.CKA_UNWRAP, false),
	)
	public := common(p11.CKO_PUBLIC_KEY)
	var mech []*p11.Mechanism
	switch s {
	case protector.RSAOAEP3072:
		mech = []*p11.Mechanism{p11.NewMechanism(p11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)}
		public = append(public,
			p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_RSA),
			p11.NewAttribute(p11.CKA_MODULUS_BITS, 3072),
			p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
			p11.NewAttribute(p11.CKA_ENCRYPT, true),
			p11.NewAttribute(p11.CKA_VERIFY, false),
			p11.NewAttribute(p11.CKA_WRAP, false),
		)
		private = append(private,
			p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_RSA),
			p11.NewAttribute(p11.CKA_DECRYPT, true),
		)
	case protector.HPKEP256:
		mech = []*p11.Mechanism{p11.NewMechanism(p11.CKM_EC_KEY_PAIR_GEN, nil)}
		public = append(public,
			p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC),
			p11.NewAttribute(p11.CKA_EC_PARAMS, p256Params),
			p11.NewAttribute(p11.CKA_VERIFY, false),
		)
		private = append(private,
			p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC),
			p11.NewAttribute(p11.CKA_DERIVE, true),
		)
	default:
		return nil, fmt.Errorf("pkcs11: generate: %w: %v has no private operation a token offers", protector.ErrUnsupported, s)
	}
	var pub, priv p11.ObjectHandle
	err := t.do("generate", func(sh p11.SessionHandle) error {
		var err error
		pub, priv, err = t.ctx.GenerateKeyPair(sh, mech, public, private)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: generate %v: %w", s, err)
	}
	return t.load(priv, pub, label, id[:])
}

// Keys lists the service keys in the token, newest (current) first.
func (t *Token) Keys() ([]*Key, error) {
	var privs []p11.ObjectHandle
	err := t.do("find", func(sh p11.SessionHandle) error {
		var err error
		privs, err = t.find(sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY)})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: keys: %w", err)
	}
	var keys []*Key
	for _, h := range privs {
		var attrs []*p11.Attribute
		err := t.do("find", func(sh p11.SessionHandle) error {
			var err error
			attrs, err = t.ctx.GetAttributeValue(sh, h, []*p11.Attribute{
				p11.NewAttribute(p11.CKA_LABEL, nil), p11.NewAttribute(p11.CKA_ID, nil),
			})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("pkcs11: keys: %w", err)
		}
		label, id := string(attrs[0].Value), attrs[1].Value
		if !strings.HasPrefix(label, t.label+" ") {
			continue
		}
		var pubs []p11.ObjectHandle
		err = t.do("find", func(sh p11.SessionHandle) error {
			var err error
			pubs, err = t.find(sh, []*p11.Attribute{
				p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY), p11.NewAttribute(p11.CKA_ID, id),
			})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("pkcs11: keys: %w", err)
		}
		if len(pubs) != 1 {
			return nil, fmt.Errorf("pkcs11: keys: %s: %d public keys with its CKA_ID", label, len(pubs))
		}
		k, err := t.load(h, pubs[0], label, id)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b *Key) int { return b.created.Compare(a.created) })
	return keys, nil
}

// Unwrappers is Keys as the service's Config.Keys takes them.
func (t *Token) Unwrappers() ([]protector.Unwrapper, error) {
	keys, err := t.Keys()
	if err != nil {
		return nil, err
	}
	out := make([]protector.Unwrapper, len(keys))
	for i, k := range keys {
		out[i] = k
	}
	return out, nil
}

// Destroy removes the key with protector key ID id from the token: the
// last step of a rotation, once no envelope needs it.
func (t *Token) Destroy(id string) error {
	keys, err := t.Keys()
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.Public().ID() != id {
			continue
		}
		destroy := func(sh p11.SessionHandle, h p11.ObjectHandle) error { return t.ctx.DestroyObject(sh, h) }
		if err := t.use("destroy", k.priv, destroy); err != nil {
			return fmt.Errorf("pkcs11: destroy %s: %w", id, err)
		}
		if err := t.use("destroy", k.pub, destroy); err != nil {
			return fmt.Errorf("pkcs11: destroy %s public key: %w", id, err)
		}
		return nil
	}
	return fmt.Errorf("%w: %s", ErrNoSuchKey, id)
}

func (t *Token) find(sh p11.SessionHandle, tmpl []*p11.Attribute) ([]p11.ObjectHandle, error) {
	if err := t.ctx.FindObjectsInit(sh, tmpl); err != nil {
		return nil, err
	}
	defer t.ctx.FindObjectsFinal(sh)
	var all []p11.ObjectHandle
	for {
		hs, _, err := t.ctx.FindObjects(sh, 64)
		if err != nil {
			return nil, err
		}
		if len(hs) == 0 {
			return all, nil
		}
		all = append(all, hs...)
	}
}

// load reads the key's public half and makes its Unwrapper.
func (t *Token) load(priv, pub p11.ObjectHandle, label string, id []byte) (*Key, error) {
	var typ []*p11.Attribute
	err := t.do("find", func(sh p11.SessionHandle) error {
		var err error
		typ, err = t.ctx.GetAttributeValue(sh, pub, []*p11.Attribute{p11.NewAttribute(p11.CKA_KEY_TYPE, nil)})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: load %s: %w", label, err)
	}
	created, err := time.Parse(labelTime, strings.TrimPrefix(label, t.label+" "))
	if err != nil {
		return nil, fmt.Errorf("pkcs11: load %s: label has no creation time", label)
	}
	k := &Key{label: label, created: created,
		priv: newObject(p11.CKO_PRIVATE_KEY, id, priv), pub: newObject(p11.CKO_PUBLIC_KEY, id, pub)}
	switch kt, _ := ulong(typ[0].Value); kt {
	case p11.CKK_RSA:
		d, err := t.rsaDecrypter(k.priv, pub)
		if err != nil {
			return nil, fmt.Errorf("pkcs11: load %s: %w", label, err)
		}
		if k.Unwrapper, err = protector.NewRSAUnwrapper(d); err != nil {
			return nil, fmt.Errorf("pkcs11: load %s: %w", label, err)
		}
	case p11.CKK_EC:
		x, err := t.ecdhKey(k.priv, pub)
		if err != nil {
			return nil, fmt.Errorf("pkcs11: load %s: %w", label, err)
		}
		if k.Unwrapper, err = newP256Unwrapper(x); err != nil {
			return nil, fmt.Errorf("pkcs11: load %s: %w", label, err)
		}
	default:
		return nil, fmt.Errorf("pkcs11: load %s: %w: key type %d", label, protector.ErrUnsupported, kt)
	}
	return k, nil
}

// ulong decodes a CK_ULONG attribute value: native byte order and size.
func ulong(b []byte) (uint, bool) {
	switch len(b) {
	case 4:
		return uint(binary.NativeEndian.Uint32(b)), true
	case 8:
		return uint(binary.NativeEndian.Uint64(b)), true
	}
	return 0, false
}
