// Tests that build the example programs once and run them as a user would,
// checking what they print and how they exit, so the examples cannot rot.
package examples_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/container/store"
	"github.com/hellosim/hellosim/reset/idp"
)

// bin is the directory holding the built examples (set by TestMain).
var bin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "hellosim-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// go test puts its own GOROOT/bin first in the PATH of the test binary,
	// so this is the go command that runs the tests.
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "go"
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled {
		args = append(args, "-race") // the programs run under the race detector too
	}
	cmd := exec.Command(goTool, append(args, "./quickstart", "./hello", "./tls-client-auth", "./pinreset-service", "./pinreset-load", "./directory")...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build examples:", err)
		return 1
	}
	bin = dir
	return m.Run()
}

type result struct {
	stdout, stderr string
	code           int
}

// exampleCmd is a built example to run in dir, with HOME and
// XDG_CONFIG_HOME pointed at home, so nothing outside the test's
// directories is touched.
func exampleCmd(dir, home, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "HELLOSIM_TPM=",
		"DISPLAY=", "WAYLAND_DISPLAY=") // no browser opens by itself
	return cmd
}

// exitCode is the exit code of a program that ran to its end with err;
// an error that is not an exit code fails the test.
func exitCode(t *testing.T, err error, name string) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	require.NoError(t, err, "run %s", name)
	return 0
}

// runIn runs an example in dir with stdin (see exampleCmd).
func runIn(t *testing.T, dir, home, stdin, name string, args ...string) result {
	t.Helper()
	cmd := exampleCmd(dir, home, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return result{stdout: out.String(), stderr: errb.String(), code: exitCode(t, err, name)}
}

var (
	canResetRE = regexp.MustCompile(`CanReset : (\S+)`)
	keyIDRE    = regexp.MustCompile(`NgcKeyId : (\{[0-9A-F-]{36}\})`)
	triesRE    = regexp.MustCompile(`PIN refused: (\d+) tries remain`)
)

func allSubmatches(re *regexp.Regexp, s string) []string {
	var out []string
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// The quickstart tells the five stages in order, with the User State after
// each, and leaves no file behind.
func TestQuickstartTellsTheStoryInOrder(t *testing.T) {
	t.Parallel()
	for _, verbose := range []bool{false, true} {
		t.Run(fmt.Sprintf("v=%v", verbose), func(t *testing.T) {
			work, home := t.TempDir(), t.TempDir()
			var args []string
			if verbose {
				args = append(args, "-v")
			}
			r := runIn(t, work, home, "", "quickstart", args...)
			require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
			out := r.stdout
			// The first line is written before any TPM or directory work,
			// so a newcomer sees it at once (README, "Two commands").
			assert.True(t, strings.HasPrefix(out, "hellosim quickstart: Windows Hello for Business PIN reset on a TPM 2.0 simulator\n"), out)

			// Stages, in order.
			last := -1
			for i, h := range []string{"== 1. Provision", "== 2. Policy EnablePinRecovery on", "== 3. Wrong PINs",
				`== 4. "I forgot my PIN": non-destructive reset`, "== 5. Destructive reset"} {
				at := strings.Index(out, h)
				require.GreaterOrEqual(t, at, 0, "heading %d %q missing", i+1, h)
				assert.Greater(t, at, last, "heading %q out of order", h)
				last = at
			}

			// One User State block per stage, CanReset as the documentation says.
			assert.Equal(t, []string{"DestructiveOnly", "DestructiveAndNonDestructive", "DestructiveAndNonDestructive", "DestructiveOnly"},
				allSubmatches(canResetRE, out))
			assert.Equal(t, 4, strings.Count(out, "| User State "))
			ids := allSubmatches(keyIDRE, out)
			require.Len(t, ids, 4)
			assert.Equal(t, ids[0], ids[1], "enrolment keeps the NgcKeyId")
			assert.Equal(t, ids[0], ids[2], "non-destructive reset keeps the NgcKeyId")
			assert.NotEqual(t, ids[2], ids[3], "destructive reset makes a new NgcKeyId")

			assert.Equal(t, []string{"31", "30"}, allSubmatches(triesRE, out), "each wrong PIN costs one TPM try")
			for _, want := range []string{
				"onboarded to the PIN reset service: yes",
				"the signature verifies",
				"policy EnablePinRecovery: off; CanReset = DestructiveOnly",
				"CanReset = DestructiveAndNonDestructive",
				"same NgcKeyId: yes",
				"the old PIN no longer unlocks the container",
				"the login key from stage 1 verifies the new signature",
				"refused as a replay",
				"new NgcKeyId: yes",
				"registered in the directory",
				"old login key gone",
				"login key registered: POST /EnrollmentServer/key/",
				"signed in with the Hello key: the PIN unlocked the key that signed the directory's nonce -> token with amr [rsa mfa ngcmfa]",
				"the old key's msDS-KeyCredentialLink value is gone: the new one replaced it",
				"signed in with the new Hello key",
				"rollback protection: the old container with its old PIN is refused by the TPM",
			} {
				assert.Contains(t, out, want)
			}
			if verbose {
				assert.Contains(t, out, "Peak RSS:")
				assert.Regexp(t, `\[3 TPM commands: NV_DefineSpace 1, NV_Write 1, Create 1; `, out, "provisioning: the secret in NV, the login key")
				assert.Regexp(t, `\[3 TPM commands: NV_DefineSpace 1, NV_Write 1, Sign 1; `, out, "a non-destructive reset writes a new index; the device key signs its proof once")
				assert.Regexp(t, `\[1 TPM command: NV_UndefineSpace 1; `, out, "Retire undefines the old one")
			} else {
				assert.NotContains(t, out, "TPM commands")
				assert.NotContains(t, out, "Peak RSS")
			}

			for _, d := range []string{work, home} {
				entries, err := os.ReadDir(d)
				require.NoError(t, err)
				assert.Empty(t, entries, "quickstart left files in %s", d)
			}
		})
	}
}

func TestQuickstartRefusesArguments(t *testing.T) {
	t.Parallel()
	r := runIn(t, t.TempDir(), t.TempDir(), "", "quickstart", "extra")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "usage: quickstart")
}

// Exit codes of the hello CLI, as its documentation lists them.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitWrongPIN    = 3
	exitPINRefused  = 5
	exitNoContainer = 6
	exitReset       = 7
	exitPINUnsure   = 8
)

// helloCLI drives the hello command in one state directory.
type helloCLI struct {
	t     *testing.T
	state string
	home  string
}

func (h *helloCLI) run(stdin string, args ...string) result {
	h.t.Helper()
	return runIn(h.t, h.home, h.home, stdin, "hello", append([]string{"-state", h.state}, args...)...)
}

// cmd is hello in the state directory, not yet started.
func (h *helloCLI) cmd(args ...string) *exec.Cmd {
	return exampleCmd(h.home, h.home, "hello", append([]string{"-state", h.state}, args...)...)
}

// expect runs a command and checks its exit code.
func (h *helloCLI) expect(code int, stdin string, args ...string) result {
	h.t.Helper()
	r := h.run(stdin, args...)
	require.Equal(h.t, code, r.code, "hello %v\nstdout:\n%s\nstderr:\n%s", args, r.stdout, r.stderr)
	return r
}

// totp returns a code the demo directory will accept: the current one, or,
// when a reset in this time step used it already, the next step's (the
// IdP accepts one step either side), as a person would wait for.
func (h *helloCLI) totp() string {
	h.t.Helper()
	info := h.directory()
	period := int64(idp.TOTPPeriod / time.Second)
	now := time.Now()
	step := max(now.Unix()/period, info.TOTPLastStep+1)
	if step > now.Unix()/period+1 {
		time.Sleep(time.Until(time.Unix((step-1)*period, 0)))
	}
	code, err := idp.TOTPCodeAt(info.TOTPSecret, time.Unix(step*period, 0))
	require.NoError(h.t, err)
	return code
}

// dirInfo is the part of the state's directory.json the tests read.
type dirInfo struct {
	TenantID     string `json:"tenant_id"`
	ObjectID     string `json:"object_id"`
	TOTPSecret   string `json:"totp_secret"`
	TOTPLastStep int64  `json:"totp_last_step"`
}

func (h *helloCLI) directory() dirInfo {
	h.t.Helper()
	var info dirInfo
	data, err := os.ReadFile(filepath.Join(h.state, "directory.json"))
	require.NoError(h.t, err)
	require.NoError(h.t, json.Unmarshal(data, &info))
	return info
}

// container loads the user's container from the state's store, as the
// CLI finds it.
func (h *helloCLI) container() (*store.Store, *container.Container) {
	h.t.Helper()
	info := h.directory()
	st, err := store.Open(filepath.Join(h.state, "containers"))
	require.NoError(h.t, err)
	c, err := st.Lookup(info.TenantID, info.ObjectID)
	require.NoError(h.t, err)
	return st, c
}

// verifySig checks a signature printed by 'hello sign' against the public
// key of the container stored in the state directory.
func (h *helloCLI) verifySig(out, msg string) {
	h.t.Helper()
	m := regexp.MustCompile(`Signature : (\S+)`).FindStringSubmatch(out)
	require.NotNil(h.t, m, out)
	sig, err := base64.StdEncoding.DecodeString(m[1])
	require.NoError(h.t, err)

	_, c := h.container()

	digest := sha256.Sum256([]byte(msg))
	switch pub := c.PublicKey().(type) {
	case *rsa.PublicKey:
		assert.NoError(h.t, rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig))
	case *ecdsa.PublicKey:
		assert.True(h.t, ecdsa.VerifyASN1(pub, digest[:], sig))
	default:
		h.t.Fatalf("unexpected key %T", pub)
	}
}

func keyID(t *testing.T, out string) string {
	t.Helper()
	ids := allSubmatches(keyIDRE, out)
	require.NotEmpty(t, ids, out)
	return ids[len(ids)-1]
}

// A person's whole session with the CLI, in one state directory that
// persists between runs: provision, status, sign, change the PIN, enable
// recovery, both resets and delete, with the failures on the way.
func TestHelloCLIFullScenario(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	h := &helloCLI{t: t, state: filepath.Join(home, "state"), home: home}
	const password = "demo password 42"

	// Usage.
	r := h.expect(exitUsage, "")
	assert.Contains(t, r.stderr, "usage: hello")
	h.expect(exitUsage, "", "frobnicate")
	for _, cmd := range []string{"provision", "status", "sign", "export-key", "change-pin", "enable-recovery", "reset", "totp", "delete"} {
		r := h.expect(exitOK, "", cmd, "-h")
		assert.Contains(t, r.stderr, "usage: hello "+cmd, cmd)
	}

	// Nothing yet.
	r = h.expect(exitNoContainer, "", "status")
	assert.Contains(t, r.stderr, "run 'hello provision' first")

	// Provision: weak PIN, mismatched confirmation, then a good one.
	r = h.expect(exitPINRefused, "1234\n1234\n", "provision", "-password", password)
	assert.Contains(t, r.stderr, "ConstantDelta")
	r = h.expect(exitPINRefused, "135792\n135793\n", "provision")
	assert.Contains(t, r.stderr, "do not match")
	r = h.expect(exitPINRefused, "12ab34\n12ab34\n", "provision")
	assert.Contains(t, r.stderr, "LowercaseLetters")
	r = h.expect(exitOK, "135792\n135792\n", "provision")
	assert.Contains(t, r.stdout, "CanReset : DestructiveOnly")
	assert.Contains(t, r.stdout, "RSA-2048 login key")
	id := keyID(t, r.stdout)
	h.expect(exitFailure, "135792\n135792\n", "provision")

	for _, f := range []string{"device.json", "directory.json", "service.key"} {
		fi, err := os.Stat(filepath.Join(h.state, f))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
	}

	// Status reads the stored container.
	r = h.expect(exitOK, "", "status")
	assert.Equal(t, id, keyID(t, r.stdout))
	assert.Contains(t, r.stdout, "PIN recovery : not enrolled")
	assert.Contains(t, r.stdout, "User : alice@contoso.test")
	assert.Contains(t, r.stdout, "Rollback protection : on",
		"the default simulated TPM keeps its NV in the state directory")

	// Sign: the blobs load again in a new process, and a wrong PIN is
	// still counted by the next one.
	r = h.expect(exitWrongPIN, "000000\n", "sign", "-m", "hi")
	assert.Contains(t, r.stderr, "wrong PIN: 31 tries remain")
	r = h.expect(exitOK, "", "status")
	assert.Contains(t, r.stdout, "PIN tries left : 31 of 32")
	r = h.expect(exitOK, "135792\n", "sign", "-m", "first message")
	h.verifySig(r.stdout, "first message")

	// Change the PIN.
	r = h.expect(exitPINRefused, "135792\n2468\n2468\n", "change-pin")
	assert.Contains(t, r.stderr, "ConstantDelta")
	h.expect(exitWrongPIN, "999999\n246813\n246813\n", "change-pin")
	r = h.expect(exitOK, "135792\n246813\n246813\n", "change-pin")
	assert.Contains(t, r.stdout, id)
	h.expect(exitWrongPIN, "135792\n", "sign")
	h.expect(exitOK, "246813\n", "sign")

	// Non-destructive reset needs the policy and the protector.
	r = h.expect(exitReset, password+"\n", "reset", "--non-destructive")
	assert.Contains(t, r.stderr, `reset stopped at step "check"`)
	h.expect(exitUsage, "", "reset")
	h.expect(exitUsage, "", "reset", "--destructive", "--non-destructive")

	h.expect(exitWrongPIN, "135792\n", "enable-recovery")
	r = h.expect(exitOK, "246813\n", "enable-recovery")
	assert.Contains(t, r.stdout, "CanReset : DestructiveAndNonDestructive")
	assert.Equal(t, id, keyID(t, r.stdout))

	// "I forgot my PIN": wrong password, then password + TOTP.
	r = h.expect(exitReset, "not the password\n", "reset", "--non-destructive")
	assert.Contains(t, r.stderr, "password is incorrect")
	r = h.expect(exitReset, password+"\n000000\n", "reset", "--non-destructive")
	assert.Contains(t, r.stderr, `step "mfa"`)
	r = h.expect(exitOK, password+"\n"+h.totp()+"\n582046\n582046\n", "reset", "--non-destructive", "-entry", "lock-screen")
	assert.Contains(t, r.stdout, "Same NgcKeyId "+id)
	assert.Contains(t, r.stdout, "CanReset : DestructiveAndNonDestructive")
	h.expect(exitWrongPIN, "246813\n", "sign")
	r = h.expect(exitOK, "582046\n", "sign", "-m", "after reset")
	h.verifySig(r.stdout, "after reset")

	// Destructive reset: new key, no protector.
	r = h.expect(exitOK, password+"\n"+h.totp()+"\n917364\n917364\n", "reset", "--destructive", "-y")
	newID := keyID(t, r.stdout)
	assert.NotEqual(t, id, newID)
	assert.Contains(t, r.stdout, "register:")
	assert.Contains(t, r.stdout, "CanReset : DestructiveOnly")
	h.expect(exitWrongPIN, "582046\n", "sign")
	r = h.expect(exitOK, "917364\n", "sign", "-m", "new key")
	h.verifySig(r.stdout, "new key")
	r = h.expect(exitOK, "", "status")
	assert.Equal(t, newID, keyID(t, r.stdout))
	assert.Contains(t, r.stdout, "generation ")

	// Another TPM cannot use the container: its SRK is pinned.
	r = h.expect(exitFailure, "917364\n", "sign", "--tpm", "sim:seed=1")
	assert.Contains(t, r.stderr, "made on another TPM")
	r = h.expect(exitFailure, "", "sign", "--tpm", "nonsense://x")
	assert.Contains(t, r.stderr, "open TPM")

	// Delete.
	r = h.expect(exitOK, "", "delete", "-y")
	assert.Contains(t, r.stdout, newID)
	h.expect(exitNoContainer, "", "status")
	h.expect(exitNoContainer, "", "delete", "-y")
	h.expect(exitNoContainer, "917364\n", "sign")
}

// A default state directory lives in the user's configuration directory;
// only provision makes it.
func TestHelloDefaultStateDir(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	dir := filepath.Join(home, ".config", "hellosim")
	r := runIn(t, home, home, "", "hello", "status")
	assert.Equal(t, exitNoContainer, r.code, r.stderr)
	assert.Contains(t, r.stderr, dir, "status names the missing state directory")
	_, err := os.Stat(filepath.Join(home, ".config"))
	assert.ErrorIs(t, err, os.ErrNotExist, "status created the state directory")

	r = runIn(t, home, home, "135792\n135792\n", "hello", "provision", "-alg", "ecc")
	require.Equal(t, exitOK, r.code, r.stderr)
	_, err = os.Stat(filepath.Join(dir, "device.json"))
	assert.NoError(t, err)
}

// The login key signs a TLS 1.3 handshake as a client certificate.
func TestTLSClientAuth(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"rsa", "ecc"} {
		r := runIn(t, t.TempDir(), t.TempDir(), "", "tls-client-auth", "-alg", alg, "-v")
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		assert.Contains(t, r.stdout, `With the Hello key:    server verified client "CN=alice@contoso.test,O=Contoso" (TLS 1.3, `)
		assert.Contains(t, r.stdout, "urn:ngckeyid:")
		assert.Contains(t, r.stdout, "Without a certificate: refused")
		assert.Contains(t, r.stdout, "the container now holds 1 certificate")
		want := map[string]string{"rsa": "RSA-2048 key", "ecc": "ECDSA P-256 key"}[alg]
		assert.Contains(t, r.stdout, want)
	}
	r := runIn(t, t.TempDir(), t.TempDir(), "", "tls-client-auth", "-alg", "dsa")
	assert.Equal(t, 2, r.code)
}
