package tpm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// capture records one command and answers TPM_RC_FAILURE, so neither
// encoder goes on to parse a response and the session stays as it was.
type capture struct{ cmd []byte }

func (c *capture) Send(b []byte) ([]byte, error) {
	c.cmd = bytes.Clone(b)
	rsp := make([]byte, 10)
	binary.BigEndian.PutUint16(rsp, uint16(tpm2.TPMSTNoSessions))
	binary.BigEndian.PutUint32(rsp[2:], 10)
	binary.BigEndian.PutUint32(rsp[6:], uint32(tpm2.TPMRCFailure))
	return rsp, nil
}

// The hand-framed commands are byte-for-byte what go-tpm's encoder makes
// of the same inputs, session HMAC and parameter encryption included.
func TestWireMatchesGoTPM(t *testing.T) {
	c := &capture{}
	tp := &TPM{tr: c, sess: newSession(), srk: 0x80000000}
	tp.srkName = objectName([]byte("an SRK public area"))
	s := tp.sess
	s.handle = 0x02000000
	s.key = bytes.Repeat([]byte{0x11}, 32)
	s.nonceTPM = bytes.Repeat([]byte{0x22}, 32)
	nonces := func() { s.rand = bytes.NewReader(bytes.Repeat([]byte{0x33}, 32)) }

	secret := []byte("a sealed secret")
	auth := []byte{0x61, 0x00, 0x62}
	obj := &object{public: sealTemplate, priv: bytes.Repeat([]byte{0x44}, 100), name: objectName(sealTemplate)}
	digest := sha256.Sum256([]byte("m"))

	cases := []struct {
		name  string
		ours  func() error
		gotpm func() error
		auth  []byte
		enc   paramEncryption
	}{{
		name: "Create", enc: encryptCommand,
		ours: func() error {
			_, err := tp.send(&command{cc: tpm2.TPMCCCreate, handles: []tpm2.TPMHandle{tp.srk},
				names: []tpm2.TPM2BName{tp.srkName}, auth: sessionAuth, params: createParams(sealTemplate, secret, auth)})
			return err
		},
		gotpm: func() error {
			_, err := tpm2.Create{
				ParentHandle: tpm2.AuthHandle{Handle: tp.srk, Name: tp.srkName, Auth: s},
				InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
					UserAuth: tpm2.TPM2BAuth{Buffer: auth},
					Data:     tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: secret}),
				}},
				InPublic: tpm2.BytesAs2B[tpm2.TPMTPublic](sealTemplate),
			}.Execute(c)
			return err
		},
	}, {
		name: "Load",
		ours: func() error {
			_, err := tp.send(&command{cc: tpm2.TPMCCLoad, handles: []tpm2.TPMHandle{tp.srk},
				auth: passwordAuth, params: loadParams(obj), rspHandles: 1})
			return err
		},
		gotpm: func() error {
			_, err := tpm2.Load{
				ParentHandle: tpm2.AuthHandle{Handle: tp.srk, Name: tp.srkName, Auth: tpm2.PasswordAuth(nil)},
				InPrivate:    tpm2.TPM2BPrivate{Buffer: obj.priv},
				InPublic:     tpm2.BytesAs2B[tpm2.TPMTPublic](obj.public),
			}.Execute(c)
			return err
		},
	}, {
		name: "Unseal", auth: auth, enc: encryptResponse,
		ours: func() error {
			_, err := tp.send(&command{cc: tpm2.TPMCCUnseal, handles: []tpm2.TPMHandle{0x80000001},
				names: []tpm2.TPM2BName{obj.name}, auth: sessionAuth})
			return err
		},
		gotpm: func() error {
			_, err := tpm2.Unseal{ItemHandle: tpm2.AuthHandle{Handle: 0x80000001, Name: obj.name, Auth: s}}.Execute(c)
			return err
		},
	}, {
		name: "Sign", auth: auth,
		ours: func() error {
			_, err := tp.send(&command{cc: tpm2.TPMCCSign, handles: []tpm2.TPMHandle{0x80000002},
				names: []tpm2.TPM2BName{obj.name}, auth: sessionAuth, params: signParams(digest[:], tpm2.TPMAlgECDSA, tpm2.TPMAlgSHA256)})
			return err
		},
		gotpm: func() error {
			_, err := tpm2.Sign{
				KeyHandle: tpm2.AuthHandle{Handle: 0x80000002, Name: obj.name, Auth: s},
				Digest:    tpm2.TPM2BDigest{Buffer: digest[:]},
				InScheme: tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgECDSA,
					Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSchemeHash{HashAlg: tpm2.TPMAlgSHA256})},
				Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
			}.Execute(c)
			return err
		},
	}, {
		name: "FlushContext",
		ours: func() error {
			_, err := tp.send(&command{cc: tpm2.TPMCCFlushContext, params: binary.BigEndian.AppendUint32(nil, 0x80000001)})
			return err
		},
		gotpm: func() error {
			_, err := tpm2.FlushContext{FlushHandle: tpm2.TPMHandle(0x80000001)}.Execute(c)
			return err
		},
	}}
	for _, tc := range cases {
		s.use(tc.auth, tc.enc)
		nonces()
		if err := tc.ours(); err == nil {
			t.Fatalf("%s: want the captured failure", tc.name)
		}
		ours := c.cmd
		nonces()
		if err := tc.gotpm(); err == nil {
			t.Fatalf("%s: want the captured failure", tc.name)
		}
		if !bytes.Equal(ours, c.cmd) {
			t.Errorf("%s differs:\nours   %x\ngo-tpm %x", tc.name, ours, c.cmd)
		}
		if tc.enc == encryptCommand && bytes.Contains(ours, secret) {
			t.Errorf("%s: secret in clear", tc.name)
		}
	}
}
