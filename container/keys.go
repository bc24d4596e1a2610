package container

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"

	"github.com/hellosim/hellosim/tpm"
)

// algOf names the algorithm of a public key, -1 when unsupported.
func algOf(pub any) tpm.KeyAlgorithm {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() == 2048 {
			return tpm.RSA2048
		}
	case *ecdsa.PublicKey:
		if k.Curve.Params().BitSize == 256 {
			return tpm.ECCP256
		}
	}
	return -1
}

func samePublicKey(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && b != nil && ak.Equal(b)
}
