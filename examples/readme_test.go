package examples_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/device"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/service"
	"github.com/hellosim/hellosim/tpm"
)

// Example_readme is the usage sample of the README, verbatim between the
// README markers (TestReadmeSampleIsTheExample keeps them equal).
func Example_readme() {
	check := func(err error) {
		if err != nil {
			log.Fatal(err)
		}
	}
	// The world around the device: a directory with a tenant onboarded to
	// the PIN reset service, a user, the service, and signIn, the user's
	// password + MFA on the device (bound to the device key when given one),
	// which yields an access token. The clock moves one TOTP step per
	// sign-in, so each has a fresh code.
	var steps atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(steps.Load()) * idp.TOTPPeriod) }
	dir, err := idp.New(idp.WithArgon2(idp.LightArgon2Params()), idp.WithClock(clock))
	check(err)
	tenant, err := dir.AddTenant(idp.TenantConfig{Domain: "contoso.test", ConsentedApps: []string{identity.PINResetServiceAppID, identity.PINResetClientAppID}})
	check(err)
	user, err := dir.AddUser(idp.UserConfig{TenantID: tenant.ID, UPN: "alice@contoso.test", Password: "correct horse battery staple"})
	check(err)
	serviceKey, err := protector.GenerateServiceKey(protector.HPKEX25519)
	check(err)
	verifier, err := service.VerifierFor(dir)
	check(err)
	svc, err := service.New(service.Config{Verifier: verifier, Directory: dir, Keys: []protector.Unwrapper{serviceKey}, Clock: clock})
	check(err)
	client := service.NewInProcess(svc).WithClock(clock)
	signIn := func(deviceKey crypto.Signer, deviceID string) string {
		steps.Add(1)
		pending, err := dir.SignIn(context.Background(), user.UPN, "correct horse battery staple")
		check(err)
		if deviceKey != nil {
			proof, err := dir.DeviceProof(deviceKey, user.TenantID, clock())
			check(err)
			check(pending.BindDevice(context.Background(), deviceID, proof))
		}
		code, err := dir.TOTPCode(user.UPN)
		check(err)
		token, err := pending.CompleteMFA(context.Background(), code)
		check(err)
		return token
	}

	// README:begin
	ctx := context.Background()
	t, err := tpm.Open("sim") // or "tcp://127.0.0.1:2321" (swtpm), "/dev/tpmrm0"
	check(err)
	defer t.Close()

	// Provision: an RSA-2048 login key in the TPM, authorized by the PIN.
	cfg := container.Config{User: user.UPN, UserID: user.ObjectID, TenantID: user.TenantID}
	c, err := container.Provision(ctx, t, cfg, "135792")
	check(err)

	// Join the device: a TPM key of its own (no PIN), registered with the
	// directory as the device object by the user's sign-in.
	dev, err := device.Join(ctx, t, nil)
	check(err)
	devKey, err := dev.Signer(ctx, t)
	check(err)
	defer devKey.Close()
	check(dir.RegisterDevice(ctx, signIn(nil, ""), dev.ID(), dev.PublicKey()))
	client = client.WithDevice(devKey) // it signs each recovery's DPoP proof

	// Unlock with the PIN; the login key is a crypto.Signer.
	s, err := container.Unlock(ctx, t, c, "135792")
	check(err)
	defer s.Close()
	digest := sha256.Sum256([]byte("challenge"))
	sig, err := s.Signer().Sign(nil, digest[:], crypto.SHA256)
	check(err)

	// EnablePinRecovery: wrap the PIN reset protector to the service's key,
	// bound to this device.
	key, err := client.ServiceKey(ctx) // client: a *service.Client
	check(err)
	c, err = s.EnablePINRecoveryOnDevice(ctx, key, dev.ID())
	check(err)
	fmt.Println(c.UserState().CanReset)

	// "I forgot my PIN": with an access token from password + MFA on this
	// device (bound to its key) the service returns the protector; the PIN
	// changes, the keys stay.
	n, err := reset.NonDestructive(ctx, reset.Env{TPM: t, Service: client}, c,
		reset.Request{Token: signIn(devKey, dev.ID()), NewPIN: "582046"})
	check(err)
	fmt.Println(n.KeyID() == c.KeyID(),
		rsa.VerifyPKCS1v15(n.PublicKey().(*rsa.PublicKey), crypto.SHA256, digest[:], sig) == nil)
	// README:end

	// Output:
	// DestructiveAndNonDestructive
	// true true
}

// The README's usage sample is the code of Example_readme, so it compiles
// and runs under go test.
func TestReadmeSampleIsTheExample(t *testing.T) {
	src, err := os.ReadFile("readme_test.go")
	require.NoError(t, err)
	body := string(src)
	begin, end := strings.Index(body, "\t// README:begin\n"), strings.Index(body, "\t// README:end\n")
	require.True(t, begin >= 0 && end > begin)
	var want []string
	for _, line := range strings.Split(body[begin+len("\t// README:begin\n"):end], "\n") {
		want = append(want, strings.TrimPrefix(line, "\t"))
	}

	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	const marker = "<!-- sample: examples/readme_test.go Example_readme -->\n```go\n"
	i := strings.Index(string(readme), marker)
	require.GreaterOrEqual(t, i, 0, "README lacks the sample marker")
	rest := string(readme)[i+len(marker):]
	j := strings.Index(rest, "```\n")
	require.GreaterOrEqual(t, j, 0)
	require.Equal(t, strings.Join(want, "\n"), rest[:j], "README sample differs from Example_readme")
}

// go doc never shows Example functions: the README must send readers to
// where they are (the example_test.go files, go test -run Example), and
// every package it names must have them.
func TestReadmePointsAtExamplesCorrectly(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	text := string(readme)
	assert.NotContains(t, text, "(`go doc -all ./container`)")
	assert.Contains(t, text, "`go test -run Example -v ./container`")
	assert.Contains(t, text, "container/example_test.go")
	for _, pkg := range []string{"tpm", "protector", "container", "reset", "reset/service", "reset/idp"} {
		matches, err := filepath.Glob(filepath.Join("..", pkg, "example*_test.go"))
		require.NoError(t, err)
		assert.NotEmpty(t, matches, "the README says %s has Examples", pkg)
	}
}

// The README's list of the hello CLI's state files is what the CLI writes:
// every file a session leaves matches an entry, and every entry a file.
func TestReadmeStateFilesAreWhatHelloWrites(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	_, list, ok := strings.Cut(string(readme), "<!-- state files -->")
	require.True(t, ok, "README has no state-file list")
	list, _, ok = strings.Cut(list, "<!-- end of state files -->")
	require.True(t, ok)
	var patterns []string
	for _, line := range strings.Split(list, "\n") {
		if !strings.HasPrefix(line, "- ") {
			continue
		}
		entry, _, _ := strings.Cut(line, ":")
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(entry, -1) {
			patterns = append(patterns, m[1])
		}
	}
	require.NotEmpty(t, patterns)

	// A session that writes every kind of file: provision, recovery, a
	// reset with a TOTP code.
	h := provisioned(t)
	h.expect(exitOK, "135792\n", "enable-recovery")
	h.expect(exitOK, "demo password 42\n"+h.totp()+"\n582046\n582046\n", "reset", "--non-destructive")

	matched := map[string]bool{}
	err = filepath.WalkDir(h.state, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(h.state, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		found := false
		for _, p := range patterns {
			if ok, _ := filepath.Match(p, rel); ok {
				matched[p], found = true, true
			}
		}
		assert.True(t, found, "hello wrote %s, which the README's state-file list does not name", rel)
		return nil
	})
	require.NoError(t, err)
	for _, p := range patterns {
		assert.True(t, matched[p], "the README names %s, which hello did not write", p)
	}
}

// A cold build is slow and silent (cgo compiles the TCG reference TPM): the
// README says so next to the command a newcomer runs first.
func TestReadmeSaysTheFirstBuildIsSlow(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(readme), "go run ./examples/quickstart")
	require.True(t, ok)
	first, _, _ := strings.Cut(after, "\n## ")
	assert.Contains(t, strings.Join(strings.Fields(first), " "), "The first build compiles the TCG reference TPM (C code, through cgo): 1–2 minutes")
}
