// Package examplecmd is the frame the example programs share as commands:
// how they read their command line, where they may listen, the key and
// certificate files they are given, and how they serve and stop.
package examplecmd

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hellosim/hellosim/reset/idp"
)

// ErrUsage is a command line that is not right; what is wrong with it has
// been written to the flag set's output already.
var ErrUsage = errors.New("usage")

// ServerFlags are the flags every example server has.
type ServerFlags struct {
	Addr              string // -addr: where to listen, loopback only
	CertFile, KeyFile string // -cert and -key: PEM files, both or neither
}

// Server is the command line of an example server: "NAME totp SECRET",
// which prints the directory's current TOTP code for SECRET, or flags and
// no word at all.
type Server struct {
	Flags *flag.FlagSet // named for the program; it adds its own flags
	// Check, when set, checks the program's own flags once they are
	// read; its error is the message for a usage error.
	Check func() error
	f     *ServerFlags
}

// NewServer is the command line of the server name, writing its messages
// to stderr: -h prints usage and then the flags. It reads -addr (default
// addr), -cert (described by certHelp) and -key into f.
func NewServer(name, usage string, stderr io.Writer, f *ServerFlags, addr, certHelp string) Server {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.Addr, "addr", addr, "listen address (loopback only)")
	fs.StringVar(&f.CertFile, "cert", "", certHelp)
	fs.StringVar(&f.KeyFile, "key", "", "TLS private key (PEM)")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	return Server{Flags: fs, f: f}
}

// Parse reads args strictly, so that no mistyped command starts a server:
// "totp SECRET" returns the secret, flags alone return "". -h returns
// flag.ErrHelp, and any other mistake ErrUsage.
func (s Server) Parse(args []string) (totpSecret string, err error) {
	name, out := s.Flags.Name(), s.Flags.Output()
	if len(args) > 0 && args[0] == "totp" {
		if len(args) != 2 || strings.HasPrefix(args[1], "-") {
			fmt.Fprintf(out, "%s totp: give exactly one base32 secret: %[1]s totp SECRET\n", name)
			return "", ErrUsage
		}
		return args[1], nil
	}
	if err := s.Flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", flag.ErrHelp
		}
		return "", ErrUsage
	}
	if s.Flags.NArg() != 0 {
		fmt.Fprintf(out, "%s: unknown command or argument %q\n\n", name, s.Flags.Arg(0))
		s.Flags.Usage()
		return "", ErrUsage
	}
	if (s.f.CertFile == "") != (s.f.KeyFile == "") {
		fmt.Fprintf(out, "%s: give both -cert and -key, or neither\n", name)
		return "", ErrUsage
	}
	if s.Check != nil {
		if err := s.Check(); err != nil {
			fmt.Fprintf(out, "%s: %v\n", name, err)
			return "", ErrUsage
		}
	}
	return "", nil
}

// Main runs the server's command line, args, and returns the exit
// status: 0 after -h, 2 for a usage error, 0 with the TOTP code printed
// on stdout for "totp SECRET", else what serve returns (1 for an error,
// written to stderr).
func (s Server) Main(args []string, stdout, stderr io.Writer, serve func() error) int {
	name := s.Flags.Name()
	secret, err := s.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		return 2
	case secret != "":
		code, err := idp.TOTPCodeAt(secret, time.Now())
		if err != nil {
			fmt.Fprintln(stderr, name+":", err)
			return 2
		}
		fmt.Fprintln(stdout, code)
		return 0
	}
	if err := serve(); err != nil {
		fmt.Fprintln(stderr, name+":", err)
		return 1
	}
	return 0
}
