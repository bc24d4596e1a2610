package container

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/tpm"
)

// seededRand is a deterministic reader for WithRand in golden tests.
func seededRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

// The golden containers. Regenerate with go test -run Golden -update. The
// version 1 files (a sealed secret, made before rollback protection) cannot
// be made any more and are kept as they are; the version 2 one holds its
// secret in an NV index.
var goldens = []struct {
	file  string
	id    string
	keyID string
	alg   tpm.KeyAlgorithm
	keys  int
	certs int
	prot  bool
	v1    bool
}{
	{"container-rsa-full.ngc", "", "", tpm.RSA2048, 2, 1, true, true},
	{"container-ecc.ngc", "", "", tpm.ECCP256, 1, 0, false, true},
	{"container-ecc-nv.ngc", "", "", tpm.ECCP256, 1, 0, false, false},
}

func makeGolden(t *testing.T, tp *tpm.TPM, file string) *Container {
	ctx := context.Background()
	cfg := testConfig()
	opts := []Option{WithRand(seededRand(uint64(len(file))))}
	switch file {
	case "container-rsa-full.ngc":
		cfg.PINPolicy = PINPolicy{MinimumLength: 6, History: 5, Expiration: 90, LowercaseLetters: CharAllow}
		c, err := Provision(ctx, tp, cfg, testPIN, opts...)
		require.NoError(t, err)
		c, err = ChangePIN(ctx, tp, c, testPIN, otherPIN, opts...)
		require.NoError(t, err)
		s, err := Unlock(ctx, tp, c, otherPIN, opts...)
		require.NoError(t, err)
		defer s.Close()
		_, err = s.AddKey(ctx, "vpn", tpm.ECCP256)
		require.NoError(t, err)
		_, err = s.AddCertificate(LoginKeyName, selfSigned(t, s.Signer()))
		require.NoError(t, err)
		c, err = s.EnablePINRecovery(ctx, newServiceKey(t, protector.HPKEX25519).Public())
		require.NoError(t, err)
		return c
	default:
		cfg.Algorithm = tpm.ECCP256
		cfg.WorkplaceJoined = true
		cfg.WAMDefault = &WAMAccount{}
		c, err := Provision(ctx, tp, cfg, testPIN, opts...)
		require.NoError(t, err)
		return c
	}
}

func TestGoldenContainers(t *testing.T) {
	if *update {
		tp := openTPM(t)
		for _, g := range goldens {
			if g.v1 {
				continue
			}
			c := makeGolden(t, tp, g.file)
			require.NoError(t, os.WriteFile(filepath.Join("testdata", g.file), marshal(t, c), 0o644))
		}
	}
	for _, g := range goldens {
		t.Run(g.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", g.file))
			require.NoError(t, err)
			c, err := Parse(data)
			require.NoError(t, err)
			assert.Equal(t, data, marshal(t, c), "the encoding round-trips exactly")
			assert.Equal(t, g.alg, c.Config().Algorithm)
			assert.Len(t, c.KeyNames(), g.keys)
			assert.Len(t, c.Certificates(), g.certs)
			assert.Equal(t, g.prot, c.HasProtector())
			if g.v1 {
				assert.Equal(t, uint8(1), c.version())
				assert.False(t, c.RollbackProtection().On)
			} else {
				assert.Equal(t, uint8(2), c.version())
				assert.True(t, c.RollbackProtection().On)
			}
			assert.Equal(t, testConfig().User, c.Config().User)
			assert.True(t, ValidID(c.ID()))
			assert.True(t, isKeyID(c.KeyID()))
			assert.NotNil(t, c.PublicKey())
			// WithRand makes the IDs reproducible.
			seed := seededRand(uint64(len(g.file)))
			gid, _ := newGUID(seed)
			gkey, _ := newGUID(seed)
			assert.Equal(t, formatGUID(gid), c.ID())
			assert.Equal(t, "{"+upperGUID(gkey)+"}", c.KeyID())
		})
	}
}

func goldenBytes(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, g := range goldens {
		data, err := os.ReadFile(filepath.Join("testdata", g.file))
		require.NoError(t, err)
		out = append(out, data)
	}
	return out
}

func requireCorrupt(t *testing.T, err error, msgAndArgs ...any) {
	t.Helper()
	require.Error(t, err, msgAndArgs...)
	assert.ErrorIs(t, err, ErrCorrupt, msgAndArgs...)
	var fe *FormatError
	assert.ErrorAs(t, err, &fe, msgAndArgs...)
}

func TestParseRefusesEveryTruncation(t *testing.T) {
	for _, data := range goldenBytes(t) {
		for n := 0; n < len(data); n++ {
			_, err := Parse(data[:n])
			requireCorrupt(t, err, "truncated to %d of %d bytes", n, len(data))
		}
	}
}

func TestParseRefusesTrailingBytes(t *testing.T) {
	for _, data := range goldenBytes(t) {
		_, err := Parse(append(bytes.Clone(data), 0))
		requireCorrupt(t, err)
		var fe *FormatError
		require.ErrorAs(t, err, &fe)
		assert.Equal(t, "end", fe.Field)
	}
}

// Every flipped bit fails with a typed error: the checksum catches damage
// even inside the opaque TPM and ciphertext fields.
func TestParseBitFlips(t *testing.T) {
	for n, data := range goldenBytes(t) {
		accepted, tried := 0, 0
		// Every bit of the small container, every seventh of the large one
		// (each Parse decodes TPM public areas, a certificate and an envelope).
		stride := 1
		if len(data) > 1024 {
			stride = 7
		}
		for i := n % stride; i < len(data)*8; i += stride {
			tried++
			b := bytes.Clone(data)
			b[i/8] ^= 1 << (i % 8)
			c, err := Parse(b)
			if err != nil {
				requireCorrupt(t, err, "bit %d", i)
				continue
			}
			accepted++
			assert.Equal(t, b, marshal(t, c), "bit %d: accepted input must round-trip", i)
		}
		assert.Zero(t, accepted, "of %d single-bit flips", tried)
	}
}

func TestParseRefusesUnknownVersion(t *testing.T) {
	data := goldenBytes(t)[0]
	for _, v := range []byte{0, 3, 255} {
		b := bytes.Clone(data)
		b[len(formatMagic)] = v
		_, err := Parse(b)
		assert.ErrorIs(t, err, ErrUnsupportedVersion, "version %d", v)
		assert.ErrorIs(t, err, ErrCorrupt)
	}
	_, err := Parse(data)
	assert.False(t, errors.Is(err, ErrUnsupportedVersion))
}

func TestParseRefusesInconsistentFields(t *testing.T) {
	tp := openTPM(t)
	base := makeGolden(t, tp, "container-rsa-full.ngc")
	for name, mod := range map[string]func(c *Container){
		"generation zero":       func(c *Container) { c.generation = 0 },
		"uppercase ID":          func(c *Container) { c.id = "ABCDEF01-2345-4678-89AB-CDEF01234567" },
		"key ID without braces": func(c *Container) { c.keyID = "-" + c.keyID[1:37] + "-" },
		"policy out of range":   func(c *Container) { c.cfg.PINPolicy.History = 51 },
		"policy minimum 0":      func(c *Container) { c.cfg.PINPolicy.MinimumLength = 0 },
		"first key not login":   func(c *Container) { c.keys[0], c.keys[1] = c.keys[1], c.keys[0] },
		"repeated key name":     func(c *Container) { c.keys[1].name = LoginKeyName },
		"algorithm mismatch":    func(c *Container) { c.keys[1].alg = tpm.RSA2048 },
		"cert for missing key":  func(c *Container) { c.certs[0].keyName = "nope" },
		"cert for other key":    func(c *Container) { c.certs[0].keyName = "vpn" },
		"cert not DER":          func(c *Container) { c.certs[0].der = []byte{1, 2, 3} },
		"history length":        func(c *Container) { c.history = c.history[:len(c.history)-1] },
		"envelope without encS": func(c *Container) { c.encS = nil },
		"envelope for another container": func(c *Container) {
			c.id = "00000000-0000-4000-8000-000000000000"
		},
		"not an envelope": func(c *Container) { c.envelope = []byte("HSPRxxxx") },
		"not a TPM key":   func(c *Container) { c.keys[0].blob.Public = []byte{0, 1, 2} },
	} {
		c := base.clone()
		mod(c)
		data, err := c.MarshalBinary()
		require.NoError(t, err, name)
		_, err = Parse(data)
		requireCorrupt(t, err, name)
	}
	for name, raw := range map[string]func([]byte) []byte{
		"magic":   func(b []byte) []byte { b[0] = 'X'; return b },
		"empty":   func([]byte) []byte { return nil },
		"garbage": func([]byte) []byte { return bytes.Repeat([]byte{0xff}, 300) },
	} {
		_, err := Parse(raw(marshal(t, base)))
		requireCorrupt(t, err, name)
	}
}

// A container changed by anything but this package (here: a weaker policy,
// with a fresh checksum) parses, but the PIN does not unlock it: the tag
// under the container secret does not verify.
func TestAlteredContainerRefusedOnUnlock(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	cfg := testConfig()
	cfg.PINPolicy.MinimumLength = 8
	c, err := Provision(ctx, tp, cfg, "13572468")
	require.NoError(t, err)
	svc := newServiceKey(t, protector.HPKEX25519)
	e := enableRecovery(t, tp, c, "13572468", svc)
	for name, mod := range map[string]func(*Container){
		"weaker policy": func(c *Container) { c.cfg.PINPolicy.MinimumLength = 4 },
		"other user":    func(c *Container) { c.cfg.User = "mallory@contoso.com" },
	} {
		a := e.clone()
		mod(a)
		parsed, err := Parse(marshal(t, a))
		require.NoError(t, err, name)
		_, err = Unlock(ctx, tp, parsed, "13572468")
		requireCorrupt(t, err, name)
		_, err = ChangePIN(ctx, tp, parsed, "13572468", "24681357")
		requireCorrupt(t, err, name)
		r := recovered(t, svc, e)
		_, err = ResetPIN(ctx, tp, parsed, r, "24681357", nil)
		requireCorrupt(t, err, name)
	}
	_, err = Unlock(ctx, tp, e, "13572468")
	assert.NoError(t, err, "the unaltered container still unlocks")

	// The generation (and the retired index) are outside the tag of a
	// version 2 container, so that Retire can clear the record without
	// the secret; a version 1 container's tag covers its generation.
	a := e.clone()
	a.generation = 1
	if a.version() == 1 {
		_, err = Unlock(ctx, tp, a, "13572468")
		requireCorrupt(t, err, "older generation")
	} else {
		s, err := Unlock(ctx, tp, a, "13572468")
		require.NoError(t, err, "the generation only orders saves")
		s.Close()
	}
}

// Target: a container file under 4 KiB with an RSA-2048 login key.
func TestContainerSize(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	c := provision(t, tp, testConfig())
	plain := len(marshal(t, c))
	e, err := unlock(t, tp, c, testPIN).EnablePINRecovery(ctx, newServiceKey(t, protector.HPKEX25519).Public())
	require.NoError(t, err)
	enrolled := len(marshal(t, e))
	cfg := testConfig()
	cfg.PINPolicy.History = MaxPINHistory
	h := provision(t, tp, cfg)
	hs := unlock(t, tp, h, testPIN)
	full, err := hs.EnablePINRecovery(ctx, newServiceKey(t, protector.HPKEXWing).Public())
	require.NoError(t, err)
	entries := make([][]byte, MaxPINHistory)
	for i := range entries {
		entries[i] = make([]byte, historyEntryLen)
	}
	full = full.clone()
	full.history, err = (&options{rand: seededRand(1)}).sealHistory(hs.secret, full.id, entries, MaxPINHistory)
	require.NoError(t, err)
	withHistory := len(marshal(t, full))
	t.Logf("RSA-2048 container: %d bytes; with protector (HPKE X25519): %d; with an X-Wing (ML-KEM-768) protector and a full history of 50: %d", plain, enrolled, withHistory)
	assert.Less(t, plain, 4096)
	assert.Less(t, enrolled, 4096)
	assert.Less(t, withHistory, 4096)
}

func FuzzParse(f *testing.F) {
	seeds := goldenBytes(f)
	for _, data := range seeds {
		f.Add(data, false, uint8(0), uint32(0), "")
		f.Add(data[:len(data)-checksumLen], true, uint8(0), uint32(0), "")
	}
	f.Add([]byte(formatMagic+"\x01"), true, uint8(0), uint32(0), "")
	f.Add(seeds[0], false, uint8(1), uint32(tpm.NVFirst), "")
	f.Add(seeds[0], false, uint8(2), uint32(0), "the TPM keeps no NV")
	f.Add(seeds[0], false, uint8(3), uint32(tpm.NVLast), "")
	f.Fuzz(func(t *testing.T, data []byte, fixChecksum bool, mode uint8, handle uint32, why string) {
		if fixChecksum {
			// Reach past the checksum: treat data as everything before it.
			sum := sha256.Sum256(data)
			data = append(data[:len(data):len(data)], sum[:]...)
		}
		c, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("untyped error: %v", err)
			}
		} else {
			out, err := c.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, data) {
				t.Fatal("accepted input does not round-trip")
			}
			checkPINProtector(t, c)
			_ = c.UserState().String()
			_ = c.Envelope()
			_ = c.Certificates()
		}
		if mode == 0 {
			return
		}
		// The mode: give a container (the one parsed, or a seed) the PIN
		// protector the inputs describe, and check that the format keeps
		// it or refuses it, never turns it into the other one.
		if c == nil {
			if c, err = Parse(seeds[int(handle)%len(seeds)]); err != nil {
				t.Fatal(err)
			}
		}
		n := c.clone()
		// wellFormed: what the inputs describe is a protector the format
		// must keep, so a refusal is a failure too.
		inRange := handle >= tpm.NVFirst && handle <= tpm.NVLast
		var wellFormed bool
		switch mode % 3 {
		case 1:
			name := sha256.Sum256([]byte(why))
			n.pin = nvProtector{nv: tpm.NVSecret{Handle: handle, Name: append([]byte{0, 0x0b}, name[:]...)}}
			wellFormed = inRange && handle != n.retired.Handle
		case 2:
			n.pin = sealedProtector{blob: sealedBlobOf(t, seeds), why: why}
			wellFormed = len(why) <= maxReasonLen
		case 0:
			n.retired = tpm.NVSecret{Handle: handle, Name: bytes.Repeat([]byte{1}, 2+sha256.Size)}
			wellFormed = inRange && handle != n.NVIndex().Handle
		}
		data, err = n.MarshalBinary()
		if err != nil {
			if wellFormed {
				t.Fatalf("PIN protector %#v does not encode: %v", n.pin, err)
			}
			return // a field out of the format's range: the encoder refuses it
		}
		back, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("untyped error: %v", err)
			}
			if wellFormed {
				t.Fatalf("PIN protector %#v refused: %v", n.pin, err)
			}
			return
		}
		checkPINProtector(t, back)
		if !reflect.DeepEqual(back.pin, n.pin) || back.RollbackProtection() != n.RollbackProtection() {
			t.Fatalf("PIN protector %#v came back as %#v", n.pin, back.pin)
		}
	})
}

// checkPINProtector checks what a parsed container's PIN protector
// promises: rollback protection iff the secret is in an NV index, the
// format version that says so, and a clone that encodes the same.
func checkPINProtector(t *testing.T, c *Container) {
	t.Helper()
	nv := c.NVIndex()
	switch p := c.pin.(type) {
	case nvProtector:
		if nv.IsZero() || !c.RollbackProtection().On || c.version() != 2 {
			t.Fatalf("NV protector %#v: index %v, rollback %v, version %d", p, nv, c.RollbackProtection(), c.version())
		}
	case sealedProtector:
		if !nv.IsZero() || c.RollbackProtection().On || len(p.blob.Public) == 0 || len(p.blob.Private) == 0 {
			t.Fatalf("sealed protector %#v: index %v, rollback %v", p, nv, c.RollbackProtection())
		}
		if (c.version() == 1) != (p.why == "" && c.Retired().IsZero()) {
			t.Fatalf("sealed protector %#v in format version %d", p, c.version())
		}
	default:
		t.Fatalf("parsed container has PIN protector %#v", c.pin)
	}
	a, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.clone().MarshalBinary()
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("a clone encodes differently (%v)", err)
	}
}

// sealedBlobOf is a sealed PIN protector from the seeds, for the mode
// fuzzing to put in any container.
func sealedBlobOf(t *testing.T, seeds [][]byte) tpm.Blob {
	for _, data := range seeds {
		c, err := Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := c.pin.(sealedProtector); ok {
			return p.blob
		}
	}
	t.Fatal("no seed holds a sealed PIN protector")
	return tpm.Blob{}
}
