package reliability

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"testing"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/policy"
	"github.com/hellosim/hellosim/reset/service"
	"github.com/hellosim/hellosim/tpm"
)

// decoder is one function of the library that reads untrusted bytes, and
// the errors it may answer them with.
type decoder struct {
	name  string
	parse func(data []byte) error
	typed func(err error) bool
}

func isAny(targets ...error) func(error) bool {
	return func(err error) bool {
		for _, t := range targets {
			if errors.Is(err, t) {
				return true
			}
		}
		return false
	}
}

// decoders lists every decoder of untrusted input in the module. Each has
// its own fuzz target in its package (see hostileFuzzTargets); here they all
// meet the same corpus of past crashers and hostile inputs.
func decoders(t testing.TB) []decoder {
	rk, err := protector.NewReturnKey()
	if err != nil {
		t.Fatal(err)
	}
	env := hostileEnvelope(t)
	return []decoder{
		{"container.Parse", func(b []byte) error { _, err := container.Parse(b); return err }, isAny(container.ErrCorrupt)},
		{"protector.ParseEnvelope", func(b []byte) error { _, err := protector.ParseEnvelope(b); return err }, isAny(protector.ErrMalformed, protector.ErrUnsupported)},
		{"protector.Envelope.UnmarshalText", func(b []byte) error { var e protector.Envelope; return e.UnmarshalText(b) }, isAny(protector.ErrMalformed, protector.ErrUnsupported)},
		{"protector.ParseKeySet", func(b []byte) error { _, err := protector.ParseKeySet(b); return err }, func(err error) bool {
			var ke *protector.KeySetError
			return errors.As(err, &ke)
		}},
		{"protector.ParsePrivateKey", func(b []byte) error { _, err := protector.ParsePrivateKey(b); return err }, isAny(protector.ErrMalformed, protector.ErrUnsupported, protector.ErrInvalidKey)},
		{"protector.ReturnKey.Open", func(b []byte) error {
			k, err := rk.Open(b, env)
			k.Destroy()
			return err
		}, isAny(protector.ErrDecrypt, protector.ErrMalformed)},
		{"tpm.PublicKey", func(b []byte) error { _, err := tpm.PublicKey(tpm.Blob{Public: b, Private: b}); return err }, isAny(tpm.ErrCorruptBlob)},
		{"service.DecodeRecoverRequest", func(b []byte) error { _, _, err := service.DecodeRecoverRequest(b); return err }, isAny(service.ErrMalformedRequest)},
		{"service.DecodeRecoverResponse", func(b []byte) error { _, err := service.DecodeRecoverResponse(b); return err }, isAny(service.ErrBadResponse)},
		{"policy.ParseIntuneSetting", func(b []byte) error { _, err := policy.ParseIntuneSetting(b); return err }, isAny(policy.ErrMalformedSetting)},
		{"policy.ParsePINRecoveryIntune", func(b []byte) error {
			_, err := policy.ParsePINRecoveryIntune(policy.IntuneDefinitionID, string(b))
			return err
		}, isAny(policy.ErrMalformedSetting)},
		{"policy.ParsePINRecoveryOMA", func(b []byte) error {
			_, err := policy.ParsePINRecoveryOMA("./Device/Vendor/MSFT/PassportForWork/72f988bf-86f1-41af-91ab-2d7cd011db47/Policies/EnablePinRecovery", string(b))
			return err
		}, isAny(policy.ErrMalformedSetting)},
		{"policy.ParsePINRecoveryRegistry", func(b []byte) error {
			_, err := policy.ParsePINRecoveryRegistry(policy.GPORegistryKey, "EnablePinRecovery", string(b))
			return err
		}, isAny(policy.ErrMalformedSetting)},
		{"policy.ParseDomainList", func(b []byte) error { _, err := policy.ParseDomainList(string(b)); return err }, isAny(policy.ErrMalformedSetting)},
		{"policy.ParseWebSignInAllowedURLsOMA", func(b []byte) error {
			_, err := policy.ParseWebSignInAllowedURLsOMA(policy.WebSignInAllowedURLsOMA, string(b))
			return err
		}, isAny(policy.ErrMalformedSetting)},
		{"policy.ParseGPOState", func(b []byte) error { _, err := policy.ParseGPOState(string(b)); return err }, isAny(policy.ErrMalformedSetting)},
		{"reset.ParseVersion", func(b []byte) error { _, err := reset.ParseVersion(string(b)); return err }, isAny(reset.ErrInvalidVersion)},
		{"protector.ParseScheme", func(b []byte) error { _, err := protector.ParseScheme(string(b)); return err }, isAny(protector.ErrUnsupported)},
	}
}

// hostileEnvelope is a well-formed envelope for the decoders that need one.
func hostileEnvelope(t testing.TB) *protector.Envelope {
	priv, err := protector.GenerateServiceKey(protector.HPKEX25519)
	if err != nil {
		t.Fatal(err)
	}
	k, err := protector.NewKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Destroy()
	env, err := priv.Public().Wrap(k, protector.Binding{TenantID: "t", UserID: "u", ContainerID: "c"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// corpus is every crasher kept in testdata/crashers and every test vector
// the packages keep in their testdata directories.
func corpus(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for _, root := range []string{"testdata/crashers", "../../container/testdata", "../../protector/testdata", "../../reset/testdata", "../../reset/service/testdata", "../../tpm/testdata"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			out[path] = b
			// Truncations and a flipped bit of every vector too.
			if len(b) > 1 {
				out[path+"#half"] = b[:len(b)/2]
				out[path+"#short1"] = b[:len(b)-1]
				f := append([]byte(nil), b...)
				f[len(f)/3] ^= 0x01
				out[path+"#flip"] = f
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("corpus %s: %v", root, err)
		}
	}
	return out
}

// decodeSafely runs one decoder on one input, turning a panic into an error
// with its stack.
func decodeSafely(d decoder, data []byte) (err error, panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			err, panicked = fmt.Errorf("panic: %v\n%s", r, debug.Stack()), true
		}
	}()
	return d.parse(data), false
}

// TestHostileInputCorpus feeds every decoder every input of the corpus:
// past crashers, the packages' test vectors, and truncated and bit-flipped
// variants of them. None may panic; each answers nil or one of its typed
// errors, with a message of bounded size. A new crasher found by any fuzz
// target goes into testdata/crashers and stays there.
func TestHostileInputCorpus(t *testing.T) {
	ds := decoders(t)
	inputs := corpus(t)
	names := make([]string, 0, len(inputs))
	for n := range inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	runs := 0
	var long []string
	for _, d := range ds {
		for _, n := range names {
			err, panicked := decodeSafely(d, inputs[n])
			runs++
			switch {
			case panicked:
				t.Errorf("%s panics on %s: %v", d.name, n, err)
			case err != nil && !d.typed(err):
				t.Errorf("%s on %s: untyped error %T: %v", d.name, n, err, err)
			case err != nil && len(err.Error()) > 1024:
				long = append(long, fmt.Sprintf("%s on %s: a %d-byte error message", d.name, n, len(err.Error())))
			}
		}
	}
	if len(inputs) < 20 {
		t.Fatalf("corpus of %d inputs: testdata missing?", len(inputs))
	}
	t.Logf("%d decoders × %d inputs = %d runs", len(ds), len(inputs), runs)
	// An error message echoes at most a bounded part of the input: hostile
	// input must not be able to write kilobytes into a log line.
	t.Run("error messages are bounded", func(t *testing.T) {
		seen := map[string]bool{}
		for _, l := range long {
			name := l[:strings.Index(l, " on ")]
			if !seen[name] {
				seen[name] = true
				t.Errorf("%s (and %d more inputs)", l, countPrefix(long, name+" on ")-1)
			}
		}
	})
}

func countPrefix(ss []string, p string) int {
	n := 0
	for _, s := range ss {
		if strings.HasPrefix(s, p) {
			n++
		}
	}
	return n
}

// FuzzHostileInput runs every decoder on the same bytes. Its seeds are the
// corpus; a crasher it finds is saved by the fuzzing engine under
// testdata/fuzz/FuzzHostileInput and replayed by every go test.
func FuzzHostileInput(f *testing.F) {
	for _, b := range corpus(f) {
		f.Add(b)
	}
	ds := decoders(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range ds {
			err, panicked := decodeSafely(d, data)
			if panicked {
				t.Fatalf("%s panics: %v", d.name, err)
			}
			if err != nil && !d.typed(err) {
				t.Fatalf("%s: untyped error %T: %v", d.name, err, err)
			}
		}
	})
}
