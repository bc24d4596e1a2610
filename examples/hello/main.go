// Command hello is a command-line Windows Hello for Business simulator: one
// user's Hello container on a TPM, kept in a state directory so that it
// persists across runs, with the operations a person would try.
//
//	hello provision          set up Windows Hello: a login key and a PIN
//	hello status [-json]     the dsregcmd /status User State block, the
//	                         lockout state and the protections in force
//	hello sign -m TEXT       unlock with the PIN and sign with the login key
//	hello export-key [-csr]  the login public key as PEM, or a certificate
//	                         request signed by the TPM key
//	hello change-pin         change the PIN, knowing the old one
//	hello enable-recovery    enrol the PIN reset protector (EnablePinRecovery)
//	hello reset --non-destructive | --destructive [-y] [-entry lock-screen -web-host chromium [-web-signin-allowed-urls LIST] [-web-host-map NAME=ADDR,...]] [-device-code] [-no-browser]
//	                         "I forgot my PIN": password + MFA, then a reset
//	hello totp               the demo user's authenticator: the current code
//	hello demo-user          the demo user's name and password
//	hello help [command]     the commands, or one command's flags
//	hello delete [-y]        delete the container (certutil -deleteHelloContainer),
//	                         also a damaged one
//	hello sign-in            sign in with the Hello key: the PIN unlocks the key that signs the nonce
//	hello directory [-json]  what the directory holds: msDS-KeyCredentialLink values, the device
//	                         (against a directory over HTTPS: asks for the PIN, to sign in)
//
// Every command takes -state DIR (default: hellosim in the user's
// configuration directory) and --tpm SPEC (default: the TPM the container was
// made on, or the embedded simulator with its NV memory kept in the state
// directory's tpm.state, "sim:state=FILE": every command finds the same TPM,
// wrong PINs count across commands, and rollback protection is on). The
// simulated TPM serves one command at a time: a second one waits for it, up
// to 30 seconds. Give "tcp://127.0.0.1:2321" for swtpm or "/dev/tpmrm0" for
// the machine's TPM. Only provision creates the
// state directory; every other command writes nothing when it has nothing to
// change, and names the directory when it does not exist.
//
// The device holds one Hello container per user: provision refuses a user
// who has one ("already provisioned"), also when several run at once; the
// container store decides. A container file that no longer loads is named
// by every command that needs it; 'hello reset --destructive' replaces it
// (password and second factor, then a new login key and PIN for the same
// user, registered with the directory), and 'hello delete' removes it.
//
// PINs and passwords are read from the terminal without echo, verification
// codes and confirmations with echo (a code is good once, for 30 seconds),
// or, when stdin is not a terminal, one per line from stdin, in the order of
// the prompts (which go to stderr):
//
//	printf '582046\n582046\n' | hello -state hello-demo provision
//
// A new PIN is held to the PIN policy before its confirmation is asked; a
// refused or mismatched new PIN, a wrong PIN (each counts in the TPM) and a
// wrong verification code are asked again, three times in all. Ctrl-D at a prompt cancels. The TPM is opened, and its
// lockout checked, before any PIN is asked. reset --destructive and delete
// ask for confirmation (y) first, unless given -y.
//
// The PIN policy device management sets, if any, is "pin_policy" in the
// state directory's device.json, in the PassportForWork CSP's PINComplexity
// terms (minimum_pin_length, maximum_pin_length, digits, lowercase_letters,
// uppercase_letters and special_characters as 0 allow, 1 require,
// 2 disallow, history, expiration in days). device.json is read strictly: an
// unknown field is an error. provision, change-pin and both
// resets hold the new PIN to it rather than to the policy the container file
// records; sign applies its expiration. An expired PIN still unlocks, as on
// Windows: sign signs, exits 0, and says the PIN must be changed with
// hello change-pin.
//
// status -json prints one object with these fields (names are stable; new
// ones may be added): user, user_id, tenant_id, container_id, generation,
// ngc_key_id, can_reset, login_key, pin_recovery {enrolled, scheme,
// service_key_id}, enable_pin_recovery_policy, pin_policy {description,
// managed}, pin_expires (YYYY-MM-DD, absent when never), certificates,
// lockout {locked, failures, max_tries, tries_left, recovery_seconds,
// next_try_seconds}, protections {NAME: {on, detail}} with NAME among
// dictionary_attack, tpm_binding, bus_encryption, pin_policy,
// recovery_binding and rollback, tpm and state_dir.
//
// The simulated directory (tenant, user, demo password and TOTP secret) and
// the PIN reset service's key live in the state directory too, and are
// rebuilt in memory by each command; the service is called in process. A
// TOTP code is accepted once, across runs, as the service's directory does.
//
// A mistyped command or flag is named with the nearest one. A command that
// fails says why on one line and, when something can help, the next
// command on a line of its own ("Next: ...").
//
// Exit codes: 0 success, 1 failure, 2 usage, 3 wrong PIN (also: no PIN
// entered three times), 4 PIN locked by
// the TPM, 5 new PIN refused (policy or confirmation), 6 no container,
// 7 reset refused or sign-in failed, 8 the PIN may have changed (change-pin
// lost the TPM's answer and could not ask it again: try the new PIN),
// 9 the directory or the service cannot be reached, 10 its certificate is
// not trusted (give -ca), 11 the directory's discovery document names
// another issuer (or is none), 12 the service publishes no key (with 9 to
// 12 nothing was changed on disk), 130 interrupted (Ctrl-C or SIGTERM: the
// TPM is shut down first, so an interrupted command costs no PIN try).
//
// Against a directory and a PIN reset service over HTTPS (three
// processes): 'hello provision -directory ISSUER -service URL [-ca FILE]'
// checks both first (reachable, trusted, the discovery document naming
// ISSUER, a current service key), then signs the user in, joins the
// device with its TPM key, and registers the login key with the
// directory's device registration service with a DPoP-bound token. The
// URLs and the CA are kept in the state directory's remote.json, and
// later commands use them: enable-recovery wraps to the key of GET
// /v1/keys; reset signs in, binds the token to the device key at the
// token endpoint, and recovers by POST /v1/recover with a DPoP proof (a
// destructive reset registers the new key over DRS); sign-in gets its
// nonce from the directory's v2 token endpoint (grant_type srv_challenge)
// and exchanges the assertion the login key signed for an access token
// (the jwt-bearer grant), exit 7 when the directory holds no such key;
// directory signs in that way and reads the directory's GET /v1.0/me with
// the token.
//
// The user's sign-in at the directory (provision, reset) is the one of
// native apps (RFC 8252): hello listens on 127.0.0.1 on an ephemeral port,
// prints the directory's authorization address (authorization code with
// PKCE S256, a fresh state and nonce, the redirect URI
// http://127.0.0.1:PORT/signin) and opens it with xdg-open when there is a
// display and -no-browser is not given. It takes one redirect back, with
// the right state, tells the browser the tab may be closed, stops
// listening, and redeems the code with its verifier. A redirect with
// another state, the directory's error answer (such as access_denied) and
// no answer in ten minutes each end the command with exit 7 and say which.
// -device-code signs in by device code instead (it prints the code and the
// page to enter it on, and polls), as the lock-screen web host (-web-host)
// always does. The code and the tokens are never printed.
//
// The lock-screen web host (reset -entry lock-screen -web-host chromium)
// opens only Microsoft's sign-in hosts and those of
// -web-signin-allowed-urls; a page it refuses, the first or one the user
// goes on to, shows "We can't open that page right now." and ends the
// reset with exit 7. -web-host-map NAME=127.0.0.1:PORT,... makes names
// such as the directory program's federation host resolve on loopback;
// it does not allow them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hellosim/hellosim/reset/webhost"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitWrongPIN    = 3
	exitLocked      = 4
	exitPINRefused  = 5
	exitNoContainer = 6
	exitReset       = 7
	exitPINUnsure   = 8
	// 9 to 12: remote.go.
)

var errUsage = errors.New("usage")

// app is one invocation.
type app struct {
	stateDir string
	tpmSpec  string
	verbose  bool
	stdout   io.Writer
	stderr   io.Writer
	in       *input
	// webHost, when set (reset -entry lock-screen -web-host chromium),
	// opens the directory's sign-in page in the lock-screen web host.
	webHost *webhost.Allowlist
	// webHostMap maps host names to the loopback addresses that serve
	// them, for the web host's resolver (-web-host-map).
	webHostMap map[string]string
	// signIn is how a sign-in at a remote directory goes (browser.go).
	signIn signInFlags
}

type command struct {
	name    string
	args    string
	summary string
	flags   func(fs *flag.FlagSet) // command-specific flags
	run     func(ctx context.Context, a *app, fs *flag.FlagSet) error
}

// boolFlag is the flags of a command whose one flag is the boolean name.
func boolFlag(p *bool, name, usage string) func(*flag.FlagSet) {
	return func(fs *flag.FlagSet) { fs.BoolVar(p, name, false, usage) }
}

func commands() []*command {
	return []*command{
		cmdProvision(), cmdStatus(), cmdSign(), cmdExportKey(), cmdChangePIN(),
		cmdEnableRecovery(), cmdReset(), cmdTOTP(), cmdDemoUser(), cmdDelete(),
		cmdDirectory(), cmdSignIn(),
	}
}

func main() {
	onInterrupt.watch()
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func defaultStateDir() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "hellosim"
	}
	return filepath.Join(dir, "hellosim")
}

// addGlobal registers the flags every command takes, so they may come
// before or after the command name.
func (a *app) addGlobal(fs *flag.FlagSet) {
	fs.StringVar(&a.stateDir, "state", a.stateDir, "state `directory`")
	fs.StringVar(&a.tpmSpec, "tpm", a.tpmSpec, "TPM `spec`: sim:state=FILE, tcp://127.0.0.1:2321 (swtpm), /dev/tpmrm0 (default: the one the container was made on, else sim:state=DIR/tpm.state)")
	fs.BoolVar(&a.verbose, "v", a.verbose, "verbose: show the causes of errors")
}

func run(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) int {
	a := &app{stateDir: defaultStateDir(), stdout: stdout, stderr: stderr}
	cmds := commands()

	top := flag.NewFlagSet("hello", flag.ContinueOnError)
	top.SetOutput(stderr)
	a.addGlobal(top)
	top.Usage = func() {
		fmt.Fprintf(stderr, "hello: a Windows Hello for Business container on a TPM, with PIN reset.\n\n"+
			"usage: hello [-state DIR] [--tpm SPEC] <command> [flags]\n\nCommands:\n")
		for _, c := range cmds {
			fmt.Fprintf(stderr, "  %-16s %s\n", c.name, c.summary)
		}
		fmt.Fprintf(stderr, "\nRun 'hello help <command>' (or 'hello <command> -h') for a command's flags.\n\nGlobal flags:\n")
		top.PrintDefaults()
		fmt.Fprintf(stderr, "\nExit codes: 0 ok, 1 failure, 2 usage, 3 wrong PIN, 4 PIN locked, "+
			"5 new PIN refused, 6 no container, 7 reset refused or sign-in failed, "+
			"8 the PIN may have changed (try the new PIN), 9 directory or service unreachable, "+
			"10 certificate not trusted (-ca), 11 discovery names another issuer, 12 service publishes no key, 130 interrupted.\n")
	}
	if code, ok := parseFlags(top, "hello", args, stderr); !ok {
		return code
	}
	if top.NArg() == 0 {
		top.Usage()
		return exitUsage
	}
	name := top.Arg(0)
	if name == "help" {
		return help(a, cmds, top, top.Args()[1:], stderr)
	}
	cmd := lookup(name, cmds, stderr)
	if cmd == nil {
		return exitUsage
	}
	fs := a.commandFlags(cmd, stderr)
	if code, ok := parseFlags(fs, "hello "+cmd.name, top.Args()[1:], stderr); !ok {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "hello %s: unexpected arguments: %s\n", cmd.name, strings.Join(fs.Args(), " "))
		fs.Usage()
		return exitUsage
	}
	a.in = newInput(stdin, stderr)

	err := cmd.run(ctx, a, fs)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	fmt.Fprintf(stderr, "hello %s: %s\n", cmd.name, errorLine(err))
	if next := nextStep(err); next != "" {
		fmt.Fprintf(stderr, "Next: %s.\n", next)
	}
	if a.verbose {
		cause := err
		if de := (*damagedError)(nil); errors.As(err, &de) {
			cause = de.err // the sentence is said above
		}
		fmt.Fprintf(stderr, "  cause: %v\n", cause)
	}
	if code == exitUsage {
		fs.Usage()
	}
	return code
}

// lookup finds the command name, or says it is unknown (suggesting the
// nearest) and returns nil.
func lookup(name string, cmds []*command, stderr io.Writer) *command {
	for _, c := range cmds {
		if c.name == name {
			return c
		}
	}
	if near := nearest(name, cmds); near != "" {
		fmt.Fprintf(stderr, "hello: unknown command %q; did you mean %s?\n", name, near)
		return nil
	}
	fmt.Fprintf(stderr, "hello: unknown command %q; 'hello help' lists the commands\n", name)
	return nil
}

// commandFlags is the flag set of cmd: the global flags and its own.
func (a *app) commandFlags(cmd *command, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("hello "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	a.addGlobal(fs)
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "hello %s: %s\n\nusage: hello %s %s\n\nFlags:\n", cmd.name, cmd.summary, cmd.name, cmd.args)
		fs.PrintDefaults()
	}
	return fs
}

// help is 'hello help [command]': the usage, or one command's.
func help(a *app, cmds []*command, top *flag.FlagSet, args []string, stderr io.Writer) int {
	switch len(args) {
	case 0:
		top.Usage()
		return exitOK
	case 1:
		cmd := lookup(args[0], cmds, stderr)
		if cmd == nil {
			return exitUsage
		}
		a.commandFlags(cmd, stderr).Usage()
		return exitOK
	}
	fmt.Fprintln(stderr, "usage: hello help [command]")
	return exitUsage
}

// parseFlags parses args into fs. -h prints the usage (exit 0); an unknown
// flag is named with the nearest known one, and the way to list them, in
// place of the whole usage. ok is false when the command must stop, with
// code.
func parseFlags(fs *flag.FlagSet, name string, args []string, stderr io.Writer) (code int, ok bool) {
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(out)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return exitOK, false
	}
	helpCmd := "'hello help'"
	if name != "hello" {
		helpCmd = "'hello help " + strings.TrimPrefix(name, "hello ") + "'"
	}
	if bad, found := strings.CutPrefix(err.Error(), "flag provided but not defined: "); found {
		if near := nearestFlag(strings.TrimLeft(bad, "-"), fs); near != "" {
			fmt.Fprintf(stderr, "%s: unknown flag %s; did you mean --%s? (%s lists the flags)\n", name, bad, near, helpCmd)
			return exitUsage, false
		}
		fmt.Fprintf(stderr, "%s: unknown flag %s; %s lists the flags\n", name, bad, helpCmd)
		return exitUsage, false
	}
	fmt.Fprintf(stderr, "%s: %v; %s lists the flags\n", name, err, helpCmd)
	return exitUsage, false
}

// nearestFlag is the flag of fs closest to a mistyped name (at most two
// edits, dashes ignored), or "".
func nearestFlag(name string, fs *flag.FlagSet) string {
	squash := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "") }
	best, bestD := "", 3
	fs.VisitAll(func(f *flag.Flag) {
		if d := editDistance(squash(name), squash(f.Name)); d < bestD && d < len(squash(name)) {
			best, bestD = f.Name, d
		}
	})
	return best
}

// nearest is the command closest to a mistyped name (at most two edits,
// a swap of neighbours counting as one), or "".
func nearest(name string, cmds []*command) string {
	best, bestD := "", 3
	for _, c := range cmds {
		if d := editDistance(strings.ToLower(name), c.name); d < bestD {
			best, bestD = c.name, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of adjacent letters.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
