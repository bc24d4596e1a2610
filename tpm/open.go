package tpm

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/google/go-tpm/tpm2/transport/tcp"
)

// DefaultDevice is the device OpenDevice("") opens outside Windows: the
// Linux kernel's TPM resource manager. (On Windows OpenDevice("") opens the
// platform TPM through TPM Base Services.)
const DefaultDevice = "/dev/tpmrm0"

// SimulatorOption configures OpenSimulator.
type SimulatorOption func(*simConfig)

type simConfig struct {
	seed   int64
	seeded bool
	state  string
}

// WithSeed makes the simulator reproducible: its hierarchy seeds derive from
// seed, so the SRK, and the blobs created under it, are the same in every
// process. INSECURE: anyone with the seed has every key; tests only.
func WithSeed(seed int64) SimulatorOption {
	return func(c *simConfig) { c.seed, c.seeded = seed, true }
}

// WithState keeps the simulator's NV memory — hierarchy seeds,
// dictionary-attack counter, NV indices, lockout — in the file at path, so
// that every process that opens it finds the same TPM: wrong PINs still
// count, and NV indices (rollback protection) survive. The file is saved
// atomically after every command that changed NV, before its answer is
// returned, so a killed process loses nothing; a missing file starts a new
// TPM; a damaged one is an error (ErrSimStateCorrupt), never a new TPM. One
// process at a time: the file is locked (flock) while the TPM is open, and a
// second open fails at once with ErrSimStateLocked. The lock is taken on
// path+".lock", which stays. The file holds every key of that TPM in clear:
// it gives a program a TPM's behaviour, not a TPM's protection.
//
// The time between two processes counts as time the TPM was powered, so
// dictionary-attack self-healing goes on between commands as on a machine
// that stays on. A process that ends without Close counts, at the next open,
// as one authorization failure (a TPM that lost power without TPM2_Shutdown;
// TPM 2.0 Part 1 §19.8.6).
func WithState(path string) SimulatorOption {
	return func(c *simConfig) { c.state = path }
}

// Open opens the TPM named by spec:
//
//	"sim" or ""           the embedded simulator (OpenSimulator)
//	"sim:seed=N"          the embedded simulator with a fixed seed (WithSeed)
//	"sim:state=FILE"      the embedded simulator with its NV kept in FILE
//	                      between processes (WithState)
//	"tcp://host:port"     a TPM simulator speaking the TCG reference
//	                      simulator's TCP protocol, such as swtpm: commands
//	                      on port, platform (control) on port+1
//	"device" or a path    a TPM device (OpenDevice; "device" is the
//	                      platform default)
func Open(spec string) (*TPM, error) {
	switch {
	case spec == "" || spec == "sim":
		return OpenSimulator()
	case strings.HasPrefix(spec, "sim:state="):
		path := strings.TrimPrefix(spec, "sim:state=")
		if path == "" {
			return nil, fmt.Errorf("tpm: open %q: want sim:state=FILE", spec)
		}
		return OpenSimulator(WithState(path))
	case strings.HasPrefix(spec, "sim:"):
		v, ok := strings.CutPrefix(spec, "sim:seed=")
		if !ok {
			return nil, fmt.Errorf("tpm: open %q: want sim:seed=N or sim:state=FILE", spec)
		}
		seed, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("tpm: open %q: bad seed: %w", spec, err)
		}
		return OpenSimulator(WithSeed(seed))
	case strings.HasPrefix(spec, "tcp://"):
		return openTCP(strings.TrimPrefix(spec, "tcp://"))
	case spec == "device":
		return OpenDevice("")
	default:
		return OpenDevice(spec)
	}
}

// openTCP connects to a TCP TPM at addr (command port) and addr's port+1
// (platform port). No power or reset command is sent: swtpm, started with
// --flags not-need-init,startup-clear, is ready as it is.
func openTCP(addr string) (*TPM, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("tpm: open tcp://%s: %w", addr, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 || p == 65535 {
		return nil, fmt.Errorf("tpm: open tcp://%s: bad port", addr)
	}
	tr, err := tcp.Open(tcp.Config{
		CommandAddress:  net.JoinHostPort(host, port),
		PlatformAddress: net.JoinHostPort(host, strconv.FormatUint(p+1, 10)),
	})
	if err != nil {
		return nil, fmt.Errorf("tpm: open tcp://%s: %w", addr, err)
	}
	return newTPM(tr, tr, onDevice)
}
