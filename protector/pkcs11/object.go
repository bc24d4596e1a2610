//go:build cgo

package pkcs11

import (
	"errors"
	"sync/atomic"

	p11 "github.com/miekg/pkcs11"
)

// object is a key object in the token, found again by its class and CKA_ID
// when its handle goes stale: a token may renumber private objects after
// the application was logged out or its sessions closed (SoftHSM2 does).
type object struct {
	class uint
	id    []byte
	h     atomic.Uint64
}

func newObject(class uint, id []byte, h p11.ObjectHandle) *object {
	o := &object{class: class, id: id}
	o.h.Store(uint64(h))
	return o
}

func (o *object) handle() p11.ObjectHandle { return p11.ObjectHandle(o.h.Load()) }

// use runs f with o's handle on a session, finding o again and retrying
// once when the token says the handle is no longer valid.
func (t *Token) use(op string, o *object, f func(sh p11.SessionHandle, h p11.ObjectHandle) error) error {
	return t.do(op, func(sh p11.SessionHandle) error {
		err := f(sh, o.handle())
		if !isCode(err, p11.CKR_OBJECT_HANDLE_INVALID) && !isCode(err, p11.CKR_KEY_HANDLE_INVALID) {
			return err
		}
		// A private object is invisible once the application is logged
		// out, which some tokens report as an invalid handle: log in again
		// (a no-op when still logged in), then look the object up.
		if lerr := t.ctx.Login(sh, p11.CKU_USER, t.pin); lerr != nil && !isCode(lerr, p11.CKR_USER_ALREADY_LOGGED_IN) {
			return err
		}
		hs, ferr := t.find(sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, o.class), p11.NewAttribute(p11.CKA_ID, o.id)})
		if ferr != nil || len(hs) != 1 {
			return err
		}
		o.h.Store(uint64(hs[0]))
		return f(sh, hs[0])
	})
}

// sessionLost reports the errors after which a session is replaced: it was
// closed, or the application is no longer logged in.
func sessionLost(err error) bool {
	return isCode(err, p11.CKR_SESSION_HANDLE_INVALID) || isCode(err, p11.CKR_SESSION_CLOSED) ||
		isCode(err, p11.CKR_USER_NOT_LOGGED_IN)
}

// unavailable reports the errors that say the token, its session or its
// login is gone, whatever the data: the key is unavailable, the envelope
// not at fault.
func unavailable(err error) bool {
	if errors.Is(err, ErrTokenClosed) || sessionLost(err) {
		return true
	}
	for _, c := range []uint{
		p11.CKR_DEVICE_ERROR, p11.CKR_DEVICE_MEMORY, p11.CKR_DEVICE_REMOVED, p11.CKR_TOKEN_NOT_PRESENT,
		p11.CKR_CRYPTOKI_NOT_INITIALIZED, p11.CKR_OBJECT_HANDLE_INVALID, p11.CKR_KEY_HANDLE_INVALID,
		p11.CKR_HOST_MEMORY,
	} {
		if isCode(err, c) {
			return true
		}
	}
	return false
}

// reopen replaces a lost session with a new, logged-in one.
func (t *Token) reopen(old p11.SessionHandle) (p11.SessionHandle, error) {
	_ = t.ctx.CloseSession(old)
	sh, err := t.ctx.OpenSession(t.slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		return old, err
	}
	if err := t.ctx.Login(sh, p11.CKU_USER, t.pin); err != nil && !isCode(err, p11.CKR_USER_ALREADY_LOGGED_IN) {
		_ = t.ctx.CloseSession(sh)
		return old, err
	}
	return sh, nil
}
