// Command hello is a command-line Windows Hello for Business simulator: one
// user's Hello container on a TPM, kept in a state directory so that it
// persists across runs, with the operations a person would try.
//
//	hello provision          set up Windows Hello: a login key and a PIN
//	hello status             the dsregcmd /status User State block
//	hello sign -m TEXT       unlock with the PIN and sign with the login key
//	hello change-pin         change the PIN, knowing the old one
//	hello enable-recovery    enrol the PIN reset protector (EnablePinRecovery)
//	hello reset --non-destructive | --destructive
//	                         "I forgot my PIN": password + MFA, then a reset
//	hello totp               the demo user's authenticator: the current code
//	hello delete             delete the container (certutil -deleteHelloContainer)
//	hello sign-in            sign in with the Hello key: the PIN unlocks the key that signs the nonce
//	hello directory [-json]  what the directory holds: msDS-KeyCredentialLink values, the device
//
// Every command takes -state DIR (default: hellosim in the user's
// configuration directory) and --tpm SPEC (default: the TPM the container was
// made on, or the embedded simulator with a seed kept in the state directory,
// so its blobs load again in the next run). Give "tcp://127.0.0.1:2321" for
// swtpm or "/dev/tpmrm0" for the machine's TPM.
//
// PINs, passwords and codes are read from the terminal without echo, or, when
// stdin is not a terminal, one per line from stdin, in the order of the
// prompts (which go to stderr):
//
//	printf '582046\n582046\n' | hello -state hello-demo provision
//
// The PIN policy device management sets, if any, is "pin_policy" in the
// state directory's device.json, in the PassportForWork CSP's PINComplexity
// terms (minimum_pin_length, maximum_pin_length, digits, lowercase_letters,
// uppercase_letters and special_characters as 0 allow, 1 require,
// 2 disallow, history, expiration in days). provision, change-pin and both
// resets hold the new PIN to it rather than to the policy the container file
// records; sign applies its expiration. An expired PIN still unlocks, as on
// Windows: sign signs, exits 0, and says the PIN must be changed with
// hello change-pin.
//
// The simulated directory (tenant, user, demo password and TOTP secret) and
// the PIN reset service's key live in the state directory too, and are
// rebuilt in memory by each command; the service is called in process.
//
// Exit codes: 0 success, 1 failure, 2 usage, 3 wrong PIN, 4 PIN locked by
// the TPM, 5 new PIN refused (policy or confirmation), 6 no container,
// 7 reset refused or sign-in failed.
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
}

type command struct {
	name    string
	args    string
	summary string
	flags   func(fs *flag.FlagSet) // command-specific flags
	run     func(ctx context.Context, a *app, fs *flag.FlagSet) error
}

func commands() []*command {
	return []*command{
		cmdProvision(), cmdStatus(), cmdSign(), cmdChangePIN(),
		cmdEnableRecovery(), cmdReset(), cmdTOTP(), cmdDelete(),
		cmdDirectory(), cmdSignIn(),
	}
}

func main() {
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
	fs.StringVar(&a.tpmSpec, "tpm", a.tpmSpec, "TPM `spec`: sim:seed=N, tcp://127.0.0.1:2321 (swtpm), /dev/tpmrm0 (default: the one the container was made on)")
	fs.BoolVar(&a.verbose, "v", a.verbose, "verbose: show the causes of errors")
}

func run(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) int {
	a := &app{stateDir: defaultStateDir(), stdout: stdout, stderr: stderr}
	cmds := commands()

	top := flag.NewFlagSet("hello", flag.ContinueOnError)
	top.SetOutput(stderr)
	a.addGlobal(top)
	top.Usage = func() {
		fmt.Fprintf(stderr, "usage: hello [-state DIR] [--tpm SPEC] <command> [flags]\n\n"+
			"A Windows Hello for Business container on a TPM, with PIN reset.\n\nCommands:\n")
		for _, c := range cmds {
			fmt.Fprintf(stderr, "  %-16s %s\n", c.name, c.summary)
		}
		fmt.Fprintf(stderr, "\nRun 'hello <command> -h' for a command's flags.\n\nGlobal flags:\n")
		top.PrintDefaults()
		fmt.Fprintf(stderr, "\nExit codes: 0 ok, 1 failure, 2 usage, 3 wrong PIN, 4 PIN locked, "+
			"5 new PIN refused, 6 no container, 7 reset refused or sign-in failed.\n")
	}
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if top.NArg() == 0 {
		top.Usage()
		return exitUsage
	}
	name := top.Arg(0)
	var cmd *command
	for _, c := range cmds {
		if c.name == name {
			cmd = c
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "hello: unknown command %q\n", name)
		top.Usage()
		return exitUsage
	}

	fs := flag.NewFlagSet("hello "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	a.addGlobal(fs)
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: hello %s %s\n\n%s\n\nFlags:\n", cmd.name, cmd.args, cmd.summary)
		fs.PrintDefaults()
	}
	if err := fs.Parse(top.Args()[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
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
	if a.verbose {
		fmt.Fprintf(stderr, "  cause: %v\n", err)
	}
	if code == exitUsage {
		fs.Usage()
	}
	return code
}
