package protector

import (
	"crypto/hpke"
	"crypto/rsa"
)

// keyArray exposes the array that holds a Key's secret, so a test can check
// that Destroy zeroes the memory itself, not a copy.
func keyArray(k *Key) *[KeySize]byte { return &k.s.b }

// returnKeySeed does the same for a ReturnKey's private key.
func returnKeySeed(k *ReturnKey) *[32]byte { return &k.s.seed }

// hpkeKey and rsaKey expose a software service key's private key.
func (k *ServicePrivateKey) hpkeKey() hpke.PrivateKey { return k.id.(hpkeIdentity).priv }

func (k *ServicePrivateKey) rsaKey() *rsa.PrivateKey { return k.id.(rsaIdentity).d.(*rsa.PrivateKey) }
