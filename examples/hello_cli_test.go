package examples_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/syncbuf"
	"github.com/hellosim/hellosim/tpm"
)

const exitLocked = 4

// newHello is a helloCLI on a fresh state directory.
func newHello(t *testing.T) *helloCLI {
	home := t.TempDir()
	return &helloCLI{t: t, state: filepath.Join(home, "state"), home: home}
}

// provisioned is a helloCLI with an ECC container (fast to make) and PIN 135792.
func provisioned(t *testing.T, args ...string) *helloCLI {
	h := newHello(t)
	h.expect(exitOK, "135792\n135792\n", append([]string{"provision", "-alg", "ecc", "-password", "demo password 42"}, args...)...)
	return h
}

// containerFiles are the container files in the state's store.
func (h *helloCLI) containerFiles() []string {
	h.t.Helper()
	return containerFilesIn(h.t, h.state)
}

// containerFilesIn lists the container files of the state directory.
func containerFilesIn(t *testing.T, state string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(state, "containers", "*.ngc"))
	require.NoError(t, err)
	var out []string
	for _, n := range names {
		if !strings.HasPrefix(filepath.Base(n), ".") {
			out = append(out, n)
		}
	}
	return out
}

// snapshot is every file under dir with its size, mode and time.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[path] = fmt.Sprintf("%d %v %d", fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
		return nil
	})
	require.NoError(t, err)
	return out
}

// Several provisions at once on one new state directory: exactly one wins,
// the others say "already provisioned", and one container is left.
func TestHelloConcurrentProvisionsOneWins(t *testing.T) {
	t.Parallel()
	h := newHello(t)
	const n = 4
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i] = runIn(t, h.home, h.home, "135792\n135792\n", "hello", "-state", h.state, "provision", "-alg", "ecc")
		})
	}
	wg.Wait()
	wins := 0
	var winner string
	for _, r := range results {
		switch r.code {
		case exitOK:
			wins++
			winner = keyID(t, r.stdout)
		case exitFailure:
			assert.Contains(t, r.stderr, "already provisioned", "stdout:\n%s", r.stdout)
		default:
			t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
	}
	require.Equal(t, 1, wins, "exactly one provision wins")
	assert.Len(t, h.containerFiles(), 1, "one container for the user")
	r := h.expect(exitOK, "", "status")
	assert.Equal(t, winner, keyID(t, r.stdout))
	h.expect(exitOK, "135792\n", "sign", "-m", "after the race")

	r = h.expect(exitFailure, "135792\n135792\n", "provision")
	assert.Contains(t, r.stderr, "already provisioned")
	assert.Contains(t, r.stderr, winner)
	assert.NotContains(t, r.stderr, "New PIN", "asked for a PIN it could not use")
}

// damageContainer flips a bit in the middle of the one container file and
// returns its path.
func (h *helloCLI) damageContainer() string {
	h.t.Helper()
	return damageContainerIn(h.t, h.state)
}

// damageContainerIn flips one bit in the middle of the state directory's
// one container file, and returns its path.
func damageContainerIn(t *testing.T, state string) string {
	t.Helper()
	files := containerFilesIn(t, state)
	require.Len(t, files, 1)
	data, err := os.ReadFile(files[0])
	require.NoError(t, err)
	data[len(data)/2] ^= 0x10
	require.NoError(t, os.WriteFile(files[0], data, 0o600))
	return files[0]
}

// A container file with one damaged byte is named by every command that
// needs it, and 'hello delete' removes it (with confirmation, or -y).
func TestHelloDeleteRemovesADamagedContainer(t *testing.T) {
	t.Parallel()
	h := provisioned(t)
	damage := h.damageContainer
	path := damage()
	for _, args := range [][]string{{"status"}, {"sign"}, {"provision"}, {"reset", "--non-destructive"}, {"export-key"}} {
		r := h.expect(exitFailure, "135792\n135792\n", args...)
		assert.Contains(t, r.stderr, "damaged", args)
		assert.Contains(t, r.stderr, path, args)
		assert.Contains(t, r.stderr, "Next: run 'hello reset --destructive'", args)
		assert.Contains(t, r.stderr, "'hello delete'", args)
	}
	// -v adds the cause, not the same sentence again.
	r := h.expect(exitFailure, "", "-v", "status")
	assert.Equal(t, 1, strings.Count(r.stderr, "is damaged and cannot be used"), r.stderr)
	assert.Contains(t, r.stderr, "cause: ")

	r = h.expect(exitFailure, "n\n", "delete")
	assert.Contains(t, r.stderr, "Delete the damaged container file "+path+"?")
	assert.Contains(t, r.stderr, "not confirmed")
	assert.FileExists(t, path)

	r = h.expect(exitOK, "y\n", "delete")
	assert.Contains(t, r.stdout, "Deleted the damaged container file "+path)
	assert.NoFileExists(t, path)
	h.expect(exitNoContainer, "", "status")

	h.expect(exitOK, "135792\n135792\n", "provision", "-alg", "ecc")
	path = damage()
	r = h.expect(exitOK, "", "delete", "-y")
	assert.Contains(t, r.stdout, "Deleted the damaged container file "+path)
	assert.Empty(t, h.containerFiles())
}

// Commands other than provision create nothing on a mistyped -state and
// name it; on an existing one, reading commands change nothing (not even a
// lock file).
func TestHelloReadOnlyCommandsCreateNothing(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	missing := filepath.Join(home, "sttae")
	for _, args := range [][]string{
		{"status"}, {"status", "-json"}, {"totp"}, {"delete", "-y"}, {"sign"}, {"export-key"},
		{"change-pin"}, {"enable-recovery"}, {"reset", "--destructive", "-y"},
	} {
		r := runIn(t, home, home, "", "hello", append([]string{"-state", missing}, args...)...)
		assert.Equal(t, exitNoContainer, r.code, "%v: %s", args, r.stderr)
		assert.Contains(t, r.stderr, missing, "%v names the state directory", args)
		assert.NoDirExists(t, missing, "%v created the state directory", args)
	}
	entries, err := os.ReadDir(home)
	require.NoError(t, err)
	assert.Empty(t, entries)

	h := provisioned(t)
	require.NoError(t, os.Remove(filepath.Join(h.state, "containers", ".lock")))
	// The simulated TPM's own memory is the TPM's to change (a wrong PIN
	// must change it); nothing else may.
	tpmState := filepath.Join(h.state, "tpm.state")
	withoutTPM := func() map[string]string {
		s := snapshot(t, h.state)
		delete(s, tpmState)
		delete(s, h.state) // the directory's time: tpm.state is replaced by a rename
		return s
	}
	before := withoutTPM()
	h.expect(exitOK, "", "status")
	h.expect(exitOK, "", "status", "-json")
	h.expect(exitOK, "", "totp")
	h.expect(exitOK, "", "export-key")
	h.expect(exitOK, "135792\n", "sign")
	tpmBefore, err := os.ReadFile(tpmState)
	require.NoError(t, err)
	h.expect(exitWrongPIN, "000000\n", "sign")
	assert.Equal(t, before, withoutTPM(), "a reading command wrote to the state directory")
	tpmAfter, err := os.ReadFile(tpmState)
	require.NoError(t, err)
	assert.NotEqual(t, tpmBefore, tpmAfter, "the wrong PIN was not recorded in the TPM's state")

	if os.Geteuid() == 0 {
		t.Log("running as root: file modes do not stop writes, the read-only directory case is skipped")
		return
	}
	require.NoError(t, os.Chmod(filepath.Join(h.state, "containers"), 0o500))
	require.NoError(t, os.Chmod(h.state, 0o500))
	t.Cleanup(func() {
		os.Chmod(h.state, 0o700)
		os.Chmod(filepath.Join(h.state, "containers"), 0o700)
	})
	// The simulated TPM cannot keep its state in a read-only directory:
	// it refuses to run rather than forget a wrong PIN.
	r := h.expect(exitFailure, "", "status")
	assert.Contains(t, r.stderr, "tpm.state")
}

// A destructive reset works on a damaged container, as Windows offers it:
// after the password and the second factor, a new login key and PIN for
// the same user take the damaged file's place, and the directory holds the
// new key.
func TestHelloDestructiveResetReplacesADamagedContainer(t *testing.T) {
	t.Parallel()
	h := provisioned(t)
	oldKID := h.containerKID()
	files := []string{h.damageContainer()}

	r := h.expect(exitFailure, "n\n", "reset", "--destructive")
	assert.Contains(t, r.stderr, "The container file "+files[0]+" is damaged. A destructive reset replaces it")
	assert.FileExists(t, files[0], "not confirmed, nothing changed")
	r = h.expect(exitReset, "not the password\n", "reset", "--destructive", "-y")
	assert.Contains(t, r.stderr, "Your account or password is incorrect")
	assert.FileExists(t, files[0])

	r = h.expect(exitOK, "demo password 42\n"+h.totp()+"\n582046\n582046\n", "reset", "--destructive", "-y")
	assert.Contains(t, r.stdout, "Your PIN was reset. New NgcKeyId")
	assert.Contains(t, r.stdout, "in place of the damaged container")
	assert.NoFileExists(t, files[0])
	require.Len(t, h.containerFiles(), 1)
	_, c := h.container()
	assert.Equal(t, "alice@contoso.test", c.Config().User, "the same user")
	newKID := h.containerKID()
	assert.NotEqual(t, oldKID, newKID)
	var kids []string
	for _, k := range h.directoryObjects().User.KeyCredentials {
		kids = append(kids, k.KeyID)
	}
	assert.Contains(t, kids, newKID, "the directory holds the new key")
	h.expect(exitWrongPIN, "135792\n", "sign")
	r = h.expect(exitOK, "582046\n", "sign", "-m", "after the damaged reset")
	h.verifySig(r.stdout, "after the damaged reset")
}

// Cheap checks come before prompts: the TPM is opened before a PIN is
// asked, and the policy is checked before the confirmation.
func TestHelloChecksBeforePrompts(t *testing.T) {
	t.Parallel()
	h := provisioned(t)
	for _, args := range [][]string{{"sign"}, {"change-pin"}, {"export-key", "-csr"}, {"enable-recovery"}, {"reset", "--destructive"}} {
		r := h.expect(exitFailure, "135792\n", append(args, "--tpm", "bogus")...)
		assert.Contains(t, r.stderr, `open TPM "bogus"`, args)
		assert.NotContains(t, r.stderr, "PIN:", "%v asked for a PIN before opening the TPM", args)
		assert.NotContains(t, r.stderr, "[y/N]", "%v asked for confirmation before opening the TPM", args)
		assert.NotContains(t, r.stderr, "Password", args)
	}

	r := newHello(t).expect(exitPINRefused, "12\n12\n12\n", "provision", "-alg", "ecc")
	assert.Contains(t, r.stderr, "at least 4 characters")
	assert.NotContains(t, r.stderr, "Confirm", "a PIN the policy refuses is not asked twice")
	assert.Equal(t, 3, strings.Count(r.stderr, "New PIN: "), "asked three times")
}

// A mismatched PIN, a refused PIN and a wrong code are asked again, three
// times in all.
func TestHelloAsksAgain(t *testing.T) {
	t.Parallel()
	h := newHello(t)
	const password = "demo password 42"
	r := h.expect(exitPINRefused, "135792\n135793\n135792\n135794\n135792\n135795\n", "provision", "-alg", "ecc", "-password", password)
	assert.Equal(t, 2, strings.Count(r.stderr, "The PINs do not match. Try again."))
	assert.Contains(t, r.stderr, "the PINs do not match")
	r = h.expect(exitOK, "135792\n135793\n1234\n246813\n246813\n", "provision", "-alg", "ecc")
	assert.Contains(t, r.stderr, "The PINs do not match. Try again.")
	assert.Contains(t, r.stderr, "rise or fall by a constant step are too simple (rule ConstantDelta). Try again.")
	h.expect(exitOK, "246813\n", "sign")

	// change-pin: the current PIN is not a new PIN; asked again.
	r = h.expect(exitOK, "246813\n246813\n582046\n582046\n", "change-pin")
	assert.Contains(t, r.stderr, "The new PIN is the current PIN; choose a different one. Try again.")
	r = h.expect(exitPINRefused, "582046\n582046\n582046\n582046\n", "change-pin")
	assert.Contains(t, r.stderr, "the new PIN is the current PIN")
	h.expect(exitOK, "582046\n", "sign")

	// A wrong code, then the right one.
	h.expect(exitOK, "582046\n", "enable-recovery")
	r = h.expect(exitOK, password+"\n000001\n"+h.totp()+"\n917364\n917364\n", "reset", "--non-destructive")
	assert.Contains(t, r.stderr, "Try again.")
	assert.Equal(t, 2, strings.Count(r.stderr, "Verification code from your authenticator"))
	h.expect(exitOK, "917364\n", "sign")
	r = h.expect(exitReset, password+"\n000001\n000002\n000003\n", "reset", "--non-destructive")
	assert.Equal(t, 3, strings.Count(r.stderr, "Verification code from your authenticator"))
	assert.Contains(t, r.stderr, `reset stopped at step "mfa"`)
}

// "111111" is a repeated digit, not digits that rise or fall.
func TestHelloRepeatedDigitsMessage(t *testing.T) {
	t.Parallel()
	r := newHello(t).expect(exitPINRefused, "111111\n111111\n111111\n", "provision", "-alg", "ecc")
	assert.Contains(t, r.stderr, "one digit repeated is too simple")
	assert.NotContains(t, r.stderr, "rise or fall")
}

// status shows the lockout state and the protections in force; -json the
// same, under the documented field names.
func TestHelloStatusShowsLockoutAndProtections(t *testing.T) {
	t.Parallel()
	h := provisioned(t)
	h.expect(exitWrongPIN, "000000\n", "sign")
	r := h.expect(exitOK, "", "status")
	assert.Contains(t, r.stdout, "PIN tries left : 31 of 32 (one failure forgiven every 10m0s)", "the wrong PIN of the last command counts")
	assert.Contains(t, r.stdout, "Protections:")
	for _, p := range []string{"dictionary attack : on:", "tpm binding : on:", "bus encryption : on:", "pin policy : on:", "recovery binding : off:"} {
		assert.Contains(t, r.stdout, p)
	}
	id := keyID(t, r.stdout)

	r = h.expect(exitOK, "", "status", "-json")
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	assert.ElementsMatch(t, []string{"user", "user_id", "tenant_id", "container_id", "generation", "ngc_key_id",
		"can_reset", "login_key", "pin_recovery", "enable_pin_recovery_policy", "pin_policy", "certificates",
		"lockout", "protections", "tpm", "state_dir"}, slices.Collect(maps.Keys(got)))
	assert.Equal(t, id, got["ngc_key_id"])
	assert.Equal(t, "alice@contoso.test", got["user"])
	assert.Equal(t, "DestructiveOnly", got["can_reset"])
	assert.Equal(t, "ECC-P256", got["login_key"])
	lockout := got["lockout"].(map[string]any)
	assert.ElementsMatch(t, []string{"locked", "failures", "max_tries", "tries_left", "recovery_seconds", "next_try_seconds"}, slices.Collect(maps.Keys(lockout)))
	assert.Equal(t, false, lockout["locked"])
	assert.Equal(t, 31.0, lockout["tries_left"])
	assert.Equal(t, 1.0, lockout["failures"])
	assert.Equal(t, 600.0, lockout["recovery_seconds"])
	prot := got["protections"].(map[string]any)
	assert.ElementsMatch(t, []string{"dictionary_attack", "tpm_binding", "bus_encryption", "pin_policy", "recovery_binding", "rollback"}, slices.Collect(maps.Keys(prot)))
	assert.Equal(t, true, prot["dictionary_attack"].(map[string]any)["on"])
	assert.Equal(t, false, prot["recovery_binding"].(map[string]any)["on"])

	h.expect(exitOK, "135792\n", "enable-recovery")
	r = h.expect(exitOK, "", "status", "-json")
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	assert.Equal(t, true, got["protections"].(map[string]any)["recovery_binding"].(map[string]any)["on"])
	assert.Equal(t, true, got["pin_recovery"].(map[string]any)["enrolled"])
	assert.Equal(t, "DestructiveAndNonDestructive", got["can_reset"])
}

// A TPM that cannot be opened is a failure of status too.
func TestHelloStatusOnABogusTPMFails(t *testing.T) {
	t.Parallel()
	h := provisioned(t)
	for _, args := range [][]string{{"-tpm", "bogus", "status"}, {"status", "-tpm", "bogus"}, {"status", "-json", "--tpm", "nonsense://x"}} {
		r := h.run("", args...)
		assert.Equal(t, exitFailure, r.code, args)
		assert.Contains(t, r.stderr, "open TPM", args)
	}
}

// export-key writes the login public key as PEM, and with -csr a
// certificate request signed by the TPM key.
func TestHelloExportKey(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"ecc", "rsa"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			h := newHello(t)
			h.expect(exitOK, "135792\n135792\n", "provision", "-alg", alg)
			_, c := h.container()

			r := h.expect(exitOK, "", "export-key")
			block, rest := pem.Decode([]byte(r.stdout))
			require.NotNil(t, block, r.stdout)
			assert.Empty(t, bytes.TrimSpace(rest))
			assert.Equal(t, "PUBLIC KEY", block.Type)
			pub, err := x509.ParsePKIXPublicKey(block.Bytes)
			require.NoError(t, err)
			assert.True(t, c.PublicKey().(interface{ Equal(crypto.PublicKey) bool }).Equal(pub))

			h.expect(exitWrongPIN, "000000\n", "export-key", "-csr")
			out := filepath.Join(h.home, "req.pem")
			h.expect(exitOK, "135792\n", "export-key", "-csr", "-o", out)
			data, err := os.ReadFile(out)
			require.NoError(t, err)
			block, _ = pem.Decode(data)
			require.NotNil(t, block)
			assert.Equal(t, "CERTIFICATE REQUEST", block.Type)
			csr, err := x509.ParseCertificateRequest(block.Bytes)
			require.NoError(t, err)
			require.NoError(t, csr.CheckSignature(), "the TPM key signed the request")
			assert.Equal(t, "alice@contoso.test", csr.Subject.CommonName)
			assert.True(t, c.PublicKey().(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey))
		})
	}
}

// reset --destructive and delete ask first; no means nothing changes, and
// nothing else is asked.
func TestHelloConfirmsDestructiveCommands(t *testing.T) {
	t.Parallel()
	h := provisioned(t)
	_, before := h.container()
	r := h.expect(exitFailure, "n\n", "reset", "--destructive")
	assert.Contains(t, r.stderr, "A destructive reset deletes the keys and certificates of NgcKeyId "+before.KeyID()+". Continue? [y/N]")
	assert.Contains(t, r.stderr, "not confirmed; nothing was changed")
	assert.NotContains(t, r.stderr, "Password")
	h.expect(exitFailure, "\n", "reset", "--destructive") // no answer is no
	_, after := h.container()
	assert.Equal(t, before.KeyID(), after.KeyID())
	assert.Equal(t, before.Generation(), after.Generation())

	r = h.expect(exitOK, "yes\ndemo password 42\n"+h.totp()+"\n917364\n917364\n", "reset", "--destructive")
	assert.Contains(t, r.stdout, "Your PIN was reset. New NgcKeyId ")
	_, after = h.container()
	assert.NotEqual(t, before.KeyID(), after.KeyID())

	r = h.expect(exitFailure, "n\n", "delete")
	assert.Contains(t, r.stderr, "Delete the Hello container of alice@contoso.test (NgcKeyId "+after.KeyID()+")? [y/N]")
	assert.Len(t, h.containerFiles(), 1)
	r = h.expect(exitOK, "y\n", "delete")
	assert.Contains(t, r.stdout, "Deleted the Hello container of alice@contoso.test")
	assert.Empty(t, h.containerFiles())
}

// An unknown command suggests the nearest one and exits 2.
func TestHelloUnknownCommandSuggestsTheNearest(t *testing.T) {
	t.Parallel()
	h := newHello(t)
	for typo, want := range map[string]string{"stauts": "status", "provison": "provision", "chnage-pin": "change-pin", "dlete": "delete", "STATUS": "status"} {
		r := h.expect(exitUsage, "", typo)
		assert.Contains(t, r.stderr, fmt.Sprintf("hello: unknown command %q; did you mean %s?", typo, want))
	}
	r := h.expect(exitUsage, "", "frobnicate")
	assert.NotContains(t, r.stderr, "did you mean")
	assert.Contains(t, r.stderr, "'hello help' lists the commands")
	assert.NoDirExists(t, h.state)
}

// A mistyped flag is named with the nearest one, without the whole usage.
func TestHelloUnknownFlagSuggestsTheNearest(t *testing.T) {
	t.Parallel()
	h := newHello(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"reset", "--nondestructive"}, "hello reset: unknown flag -nondestructive; did you mean --non-destructive? ('hello help reset' lists the flags)"},
		{[]string{"reset", "--destrutive"}, "did you mean --destructive?"},
		{[]string{"status", "-jsno"}, "hello status: unknown flag -jsno; did you mean --json?"},
		{[]string{"--stat", "x", "status"}, "hello: unknown flag -stat; did you mean --state?"},
		{[]string{"provision", "-usr", "bob@contoso.test"}, "did you mean --user?"},
	} {
		r := h.expect(exitUsage, "", c.args...)
		assert.Contains(t, r.stderr, c.want, c.args)
		assert.NotContains(t, r.stderr, "Flags:", "%v printed the whole usage", c.args)
	}
	r := h.expect(exitUsage, "", "sign", "--frobnicate")
	assert.Contains(t, r.stderr, "hello sign: unknown flag -frobnicate; 'hello help sign' lists the flags")
	assert.NoDirExists(t, h.state)
}

// 'hello help' is the usage, 'hello help COMMAND' a command's flags.
func TestHelloHelpCommand(t *testing.T) {
	t.Parallel()
	h := newHello(t)
	r := h.expect(exitOK, "", "help")
	assert.Contains(t, r.stderr, "usage: hello")
	assert.Contains(t, r.stderr, "demo-user")
	r = h.expect(exitOK, "", "help", "reset")
	assert.Contains(t, r.stderr, "usage: hello reset --non-destructive | --destructive")
	assert.Contains(t, r.stderr, "-non-destructive")
	r = h.expect(exitUsage, "", "help", "rest")
	assert.Contains(t, r.stderr, `unknown command "rest"; did you mean reset?`)
	h.expect(exitUsage, "", "help", "reset", "status")
}

// The demo user's name and password are shown by a command of their own,
// not only by the first provision.
func TestHelloDemoUser(t *testing.T) {
	t.Parallel()
	h := provisioned(t)
	r := h.expect(exitOK, "", "demo-user")
	assert.Contains(t, r.stdout, "User              : alice@contoso.test")
	assert.Contains(t, r.stdout, "Password          : demo password 42")
	assert.Contains(t, r.stdout, "'hello totp'")
	h.expect(exitNoContainer, "", "-state", filepath.Join(h.home, "nothing"), "demo-user")
}

// Every refusal a user can act on names the next command.
func TestHelloRefusalsNameTheNextCommand(t *testing.T) {
	t.Parallel()
	h := provisioned(t)
	r := h.expect(exitReset, "", "reset", "--non-destructive")
	assert.Contains(t, r.stderr, "Next: run 'hello reset --destructive'")
	assert.Contains(t, r.stderr, "'hello enable-recovery'")

	r = h.expect(exitWrongPIN, "000000\n", "sign")
	assert.Contains(t, r.stderr, "Next: forgot your PIN? run 'hello reset --destructive'")

	r = h.expect(exitReset, "not the password\n", "reset", "--destructive", "-y")
	assert.Contains(t, r.stderr, "Next: 'hello demo-user' shows the demo user's name and password.")

	r = h.expect(exitReset, "demo password 42\n000001\n000002\n000003\n", "reset", "--destructive", "-y")
	assert.NotContains(t, r.stderr, "try again. Try again.")
	assert.Contains(t, r.stderr, "That code didn't work; 'hello totp' shows the current one. Try again.")
	assert.Contains(t, r.stderr, "Next: run the reset again with the code 'hello totp' shows.")

	r = h.expect(exitPINRefused, "1234\n1234\n1234\n", "change-pin")
	assert.Contains(t, r.stderr, "Next: run the command again with a PIN that meets the policy")
}

// device.json is read strictly: a typo is an error naming it.
func TestHelloDeviceJSONIsStrict(t *testing.T) {
	t.Parallel()
	h := provisioned(t)
	h.setPINPolicy(map[string]any{"histroy": 2})
	r := h.expect(exitFailure, "", "status")
	assert.Contains(t, r.stderr, "device.json")
	assert.Contains(t, r.stderr, "histroy")

	h.setPINPolicy(nil)
	h.expect(exitOK, "", "status")
	path := filepath.Join(h.state, "device.json")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, bytes.Replace(data, []byte(`"tpm"`), []byte(`"sed": 1, "tpm"`), 1), 0o600))
	r = h.expect(exitFailure, "", "status")
	assert.Contains(t, r.stderr, `unknown field "sed"`)
}

// A TOTP code works once, across runs, as the service's directory says.
func TestHelloTOTPCodesAreSingleUse(t *testing.T) {
	t.Parallel()
	h := provisioned(t)
	const password = "demo password 42"
	h.expect(exitOK, "135792\n", "enable-recovery")
	code := h.totp()
	h.expect(exitOK, password+"\n"+code+"\n582046\n582046\n", "reset", "--non-destructive")
	r := h.expect(exitReset, password+"\n"+code+"\n"+code+"\n"+code+"\n", "reset", "--non-destructive")
	assert.Contains(t, r.stderr, "That code was already used.")
	h.expect(exitOK, "582046\n", "sign")
	if r := h.expect(exitOK, "", "totp"); strings.TrimSpace(r.stdout) == code {
		assert.Contains(t, r.stderr, "This code was used already")
	}
}

// A reset that loses a race with change-pin says it was not stored, and
// why, without -v; it never claims the PIN was changed. (On the seeded
// simulator: the default one serves one command at a time, so the race
// could not happen there.)
func TestHelloResetThatLosesARaceSaysSo(t *testing.T) {
	t.Parallel()
	h := provisioned(t, "--tpm", "sim:seed=11")
	const password = "demo password 42"
	h.expect(exitOK, "135792\n", "enable-recovery")

	cmd, stdin, stdout, stderr := h.start("reset", "--non-destructive")
	waitFor(t, stderr, "Password for")

	// Meanwhile, the PIN is changed.
	h.expect(exitOK, "135792\n246813\n246813\n", "change-pin")

	fmt.Fprintf(stdin, "%s\n%s\n582046\n582046\n", password, h.totp())
	stdin.Close()
	err := cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	assert.Equal(t, exitReset, ee.ExitCode())
	assert.Contains(t, stderr.String(), `reset stopped at step "store": Your PIN wasn't reset: the container changed while the reset ran`)
	assert.NotContains(t, stdout.String()+stderr.String(), "Your PIN was changed")
	assert.NotContains(t, stdout.String()+stderr.String(), "Your PIN was reset")
	assert.NotContains(t, stdout.String()+stderr.String(), "All set")
	assert.NotContains(t, stderr.String(), "cause:", "said without -v")

	h.expect(exitWrongPIN, "582046\n", "sign")
	h.expect(exitOK, "246813\n", "sign")
}

// start starts hello in the background, its input a pipe and its output
// in buffers.
func (h *helloCLI) start(args ...string) (cmd *exec.Cmd, stdin io.WriteCloser, stdout, stderr *syncBuffer) {
	h.t.Helper()
	cmd = h.cmd(args...)
	stdin, err := cmd.StdinPipe()
	require.NoError(h.t, err)
	stdout, stderr = new(syncBuffer), new(syncBuffer)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	require.NoError(h.t, cmd.Start())
	return cmd, stdin, stdout, stderr
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer = syncbuf.Buffer

// waitFor waits until b holds want.
func waitFor(t *testing.T, b *syncBuffer, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for !strings.Contains(b.String(), want) {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %q; have:\n%s", want, b.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Every example's -h says what it does first, under its own name, and no
// build path.
func TestExamplesHelpSaysWhatTheyDo(t *testing.T) {
	t.Parallel()
	for name, start := range map[string]string{
		"hello":            "hello: a Windows Hello for Business container on a TPM",
		"quickstart":       "quickstart: runs the Windows Hello for Business PIN reset story",
		"tls-client-auth":  "tls-client-auth: signs a TLS 1.3 client handshake",
		"pinreset-service": "pinreset-service: runs the reference PIN reset service",
		"pinreset-load":    "pinreset-load: measures the reference PIN reset service",
	} {
		r := runIn(t, t.TempDir(), t.TempDir(), "", name, "-h")
		assert.Equal(t, exitOK, r.code, name)
		assert.True(t, strings.HasPrefix(r.stderr, start), "%s -h starts with %q:\n%s", name, r.stderr)
		assert.NotContains(t, r.stderr, bin, "%s -h shows its build path", name)
		assert.NotContains(t, r.stderr, "Usage of", name)
	}
	r := runIn(t, t.TempDir(), t.TempDir(), "", "hello", "status", "-h")
	assert.True(t, strings.HasPrefix(r.stderr, "hello status: Show the User State block"), r.stderr)

	// pinreset-service: a stray word or a missing secret starts no server.
	for _, args := range [][]string{{"totp"}, {"serve"}, {"-addr", "127.0.0.1:0", "extra"}} {
		r := runIn(t, t.TempDir(), t.TempDir(), "", "pinreset-service", args...)
		assert.Equal(t, exitUsage, r.code, "%v: %s", args, r.stderr)
		assert.NotContains(t, r.stdout, "PIN reset service (demonstration) at", args)
	}
	r = runIn(t, t.TempDir(), t.TempDir(), "", "pinreset-load", "extra")
	assert.NotEqual(t, exitOK, r.code)
	assert.Contains(t, r.stderr, "unexpected arguments")
}

// Two resets that get the same code accepted at the same moment: only one
// may use it.
func TestHelloTOTPCodeUsedOnceByConcurrentResets(t *testing.T) {
	t.Parallel()
	h := provisioned(t)
	h.expect(exitOK, "135792\n", "enable-recovery")
	code := h.totp()
	const n = 3
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i] = h.run("demo password 42\n"+code+"\n582046\n582046\n", "reset", "--non-destructive")
		})
	}
	wg.Wait()
	used := 0
	for _, r := range results {
		if strings.Contains(r.stderr, "already used") {
			used++
		}
	}
	// The others either lost at the code or, having got in, at the store.
	assert.GreaterOrEqual(t, used, 1, "%+v", results)
	oks := 0
	for _, r := range results {
		if r.code == exitOK {
			oks++
		}
	}
	assert.LessOrEqual(t, oks, 1, "the same code reset the PIN twice: %+v", results)
}

// A wrong PIN is asked again, as at the Windows sign-in; each one counts
// in the TPM.
func TestHelloWrongPINIsAskedAgain(t *testing.T) {
	t.Parallel()
	h := provisioned(t)
	r := h.expect(exitOK, "000000\n135792\n", "sign", "-m", "second try")
	assert.Contains(t, r.stderr, "Wrong PIN: 31 tries remain before the TPM locks. Try again.")
	h.verifySig(r.stdout, "second try")
	// The failures of every command count, in the TPM's state file.
	r = h.expect(exitWrongPIN, "000000\n000001\n000002\n135792\n", "sign")
	assert.Len(t, regexp.MustCompile(`(?m)^PIN: $`).FindAllString(r.stderr, -1), 3, "three tries")
	assert.Contains(t, r.stderr, "wrong PIN: 28 tries remain")

	r = h.expect(exitOK, "000000\n246813\n246813\n135792\n", "change-pin")
	assert.Contains(t, r.stderr, "Wrong PIN: 27 tries remain before the TPM locks. Try again.")
	h.expect(exitOK, "246813\n", "sign")
	h.expect(exitOK, "000000\n246813\n", "export-key", "-csr")
}

// On the default TPM (the simulator with its NV in the state directory) an
// old copy of the container is refused by the TPM after change-pin: the
// secret's NV index now holds the new PIN, in the TPM's state file.
func TestHelloDefaultTPMRefusesAnOldCopy(t *testing.T) {
	t.Parallel()
	h := provisioned(t)
	r := h.expect(exitOK, "", "status")
	assert.Contains(t, r.stdout, "Rollback protection : on")
	files := h.containerFiles()
	require.Len(t, files, 1)
	old, err := os.ReadFile(files[0])
	require.NoError(t, err)

	h.expect(exitOK, "135792\n246813\n246813\n", "change-pin")
	require.NoError(t, os.WriteFile(files[0], old, 0o600)) // the old copy back
	r = h.expect(exitWrongPIN, "135792\n", "sign")         // the TPM holds the new PIN
	assert.NotContains(t, r.stdout, "Signature")
}

// The simulated TPM serves one command at a time: a command that finds it
// in use says so and waits for the other to finish.
func TestHelloWaitsForTheSimulatedTPM(t *testing.T) {
	t.Parallel()
	h := provisioned(t)
	cmd, stdin, _, errb := h.start("sign")
	waitFor(t, errb, "PIN: ") // sign holds the TPM

	status, _, sout, serr := h.start("status")
	waitFor(t, serr, "The simulated TPM is in use by another hello command; waiting")

	fmt.Fprintln(stdin, "000000") // a wrong PIN, then the right one
	fmt.Fprintln(stdin, "135792")
	stdin.Close()
	require.NoError(t, cmd.Wait(), errb.String())
	require.NoError(t, status.Wait(), serr.String())
	assert.Contains(t, sout.String(), "PIN tries left : 31 of 32", "status saw the TPM sign left")
}

// The lockout messages count right on the default TPM (its counter lives
// in tpm.state), and once the TPM is locked they say when a PIN can be
// tried again and that a reset cannot help before then.
func TestHelloLockoutMessagesCountRight(t *testing.T) {
	t.Parallel()
	h := provisioned(t)
	h.expect(exitOK, "135792\n", "enable-recovery")
	// Four tries in all, so that the test reaches the lockout quickly.
	tp, err := tpm.Open(h.device())
	require.NoError(t, err)
	require.NoError(t, tp.SetLockoutParameters(context.Background(), 4, tpm.WindowsRecovery, tpm.WindowsLockoutRecovery, nil))
	require.NoError(t, tp.Close())

	r := h.expect(exitWrongPIN, "000000\n000001\n000002\n", "sign")
	assert.Contains(t, r.stderr, "Wrong PIN: 3 tries remain before the TPM locks. Try again.")
	assert.Contains(t, r.stderr, "Wrong PIN: 2 tries remain before the TPM locks. Try again.")
	assert.Contains(t, r.stderr, "hello sign: wrong PIN: 1 try remains before the TPM locks")
	r = h.expect(exitWrongPIN, "000003\n", "sign")
	assert.Contains(t, r.stderr, "wrong PIN, and that was the last try: the TPM has locked the PIN")
	assert.NotContains(t, r.stderr, "0 tries remain")

	r = h.expect(exitLocked, "", "sign")
	assert.Contains(t, r.stderr, "a PIN can be tried again in at most 10m0s")
	r = h.expect(exitLocked, "", "reset", "--non-destructive")
	assert.Contains(t, r.stderr, "A PIN reset cannot help before then: it needs the TPM too")
	assert.NotContains(t, r.stderr, "Password for", "asked for a password on a locked TPM")
	r = h.expect(exitOK, "", "status")
	assert.Contains(t, r.stdout, "PIN tries left : none: the TPM is locked")
}
