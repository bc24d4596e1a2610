package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/container/store"
	"github.com/hellosim/hellosim/internal/fsync"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/service"
)

// The state directory holds three parties' data, each in its own file, as if
// they lived on different machines:
//
//	device.json      the device: TPM spec, policy (and the simulator seed of
//	                 devices made before tpm.state)
//	tpm.state        the device: the simulated TPM's NV memory (seeds,
//	                 lockout counter, NV indices), tpm.WithState; tpm.state.lock
//	containers/      the device: the Hello container (store.Store)
//	directory.json   the simulated Azure AD tenant and user (demo password and
//	                 TOTP secret in clear: this is a simulator)
//	directory-objects.json  the directory's device object and registered
//	                 Hello keys (directory.go)
//	service.key      the PIN reset service's private key
const (
	deviceFile    = "device.json"
	tpmStateFile  = "tpm.state"
	directoryFile = "directory.json"
	serviceFile   = "service.key"
	containersDir = "containers"
)

// device is what the device keeps between runs. device.json is decoded
// strictly: a field this program does not know (a typo such as "histroy")
// is an error, not silently ignored.
type device struct {
	// Seed of the embedded simulator, for devices provisioned on
	// "sim:seed=N" before the simulator kept its state in tpm.state.
	Seed int64 `json:"seed,omitempty"`
	// TPM is the spec the container was provisioned on
	// ("sim:state=tpm.state", a path relative to the state directory;
	// "sim:seed=N"; "tcp://127.0.0.1:2321"; "/dev/tpmrm0").
	TPM string `json:"tpm,omitempty"`
	// LegacyContainerID is where earlier versions named the current
	// container, outside the store's lock. It is accepted and ignored: the
	// store finds the user's container (one per user) itself.
	LegacyContainerID string `json:"container_id,omitempty"`
	// EnablePINRecovery is the PassportForWork policy as set on this device.
	EnablePINRecovery bool `json:"enable_pin_recovery"`
	// PINPolicy is the PassportForWork PINComplexity policy device
	// management set on this device, if any. Every command that sets or
	// checks a PIN applies it in place of the policy the container records
	// (container.WithPINPolicy, reset.Env.PINPolicy): before the container is
	// unlocked, its recorded policy is not authenticated.
	PINPolicy *pinComplexity `json:"pin_policy,omitempty"`
}

// pinComplexity is the PINComplexity policy in the PassportForWork CSP's
// terms: character classes 0 allow, 1 require, 2 disallow; absent fields
// take the CSP defaults (4 to 127 characters, digits required, other classes
// disallowed, no history, no expiration).
type pinComplexity struct {
	MinimumPINLength  int  `json:"minimum_pin_length,omitempty"`
	MaximumPINLength  int  `json:"maximum_pin_length,omitempty"`
	Digits            *int `json:"digits,omitempty"`
	LowercaseLetters  *int `json:"lowercase_letters,omitempty"`
	UppercaseLetters  *int `json:"uppercase_letters,omitempty"`
	SpecialCharacters *int `json:"special_characters,omitempty"`
	History           int  `json:"history,omitempty"`
	Expiration        int  `json:"expiration,omitempty"` // days, 0 never
}

// policy converts p, refusing values the CSP would not accept.
func (p *pinComplexity) policy() (container.PINPolicy, error) {
	out := container.PINPolicy{
		MinimumLength: p.MinimumPINLength, MaximumLength: p.MaximumPINLength,
		History: p.History, Expiration: p.Expiration,
	}
	for _, c := range []struct {
		name string
		v    *int
		r    *container.CharRule
	}{
		{"digits", p.Digits, &out.Digits},
		{"lowercase_letters", p.LowercaseLetters, &out.LowercaseLetters},
		{"uppercase_letters", p.UppercaseLetters, &out.UppercaseLetters},
		{"special_characters", p.SpecialCharacters, &out.SpecialCharacters},
	} {
		if c.v == nil {
			continue
		}
		r, err := container.CharRuleFromCSP(*c.v)
		if err != nil {
			return out, fmt.Errorf("%s: %w", c.name, err)
		}
		*c.r = r
	}
	return out, out.Validate()
}

// directory is the simulated tenant and user, recreated in memory each run.
type directory struct {
	TenantID   string `json:"tenant_id"`
	Domain     string `json:"domain"`
	UPN        string `json:"upn"`
	ObjectID   string `json:"object_id"`
	Password   string `json:"password"`
	TOTPSecret string `json:"totp_secret"`
	// TOTPLastStep is the RFC 6238 time step of the last code accepted:
	// a code is good once (§5.2), across runs as in the service.
	TOTPLastStep int64 `json:"totp_last_step,omitempty"`
}

// state is an open state directory.
type state struct {
	dir string
	dev device
}

var errNoContainer = errors.New("no Hello container: run 'hello provision' first")

// noStateError is a command that needs a state directory run on one that
// does not exist: it names the directory, and creates nothing.
type noStateError struct{ dir string }

func (e *noStateError) Error() string {
	return fmt.Sprintf("no Hello container: state directory %s does not exist (run 'hello provision' first, or give -state the right directory)", e.dir)
}

func (e *noStateError) Is(target error) bool { return target == errNoContainer }

// damagedError is a container file of the device that does not load;
// needs, when set, says what the command needed from it.
type damagedError struct {
	path  string
	err   error
	needs string
}

// Error is the message for the user; errorLine and nextStep use it, and -v
// adds the cause (Unwrap), not this sentence again.
func (e *damagedError) Error() string {
	if e.needs != "" {
		return fmt.Sprintf("the Hello container file %s is damaged, and %s", e.path, e.needs)
	}
	return fmt.Sprintf("the Hello container file %s is damaged and cannot be used", e.path)
}

func (e *damagedError) Unwrap() error { return e.err }

// openState opens the state directory and its device file. With create
// (provision), it makes both when needed, a new device with a random
// simulator seed; concurrent first runs agree on one device file. Without,
// it writes nothing, and a missing directory is a *noStateError.
func openState(dir string, create bool) (*state, error) {
	s := &state{dir: dir}
	if !create {
		fi, err := os.Stat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &noStateError{dir: dir}
		}
		if err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("state directory %s is not a directory", dir)
		}
		err = readJSON(s.path(deviceFile), &s.dev)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errNoContainer
		}
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	err := readJSON(s.path(deviceFile), &s.dev)
	if errors.Is(err, fs.ErrNotExist) {
		fresh := device{}
		data, merr := json.MarshalIndent(fresh, "", "  ")
		if merr != nil {
			return nil, merr
		}
		// Exclusive: of two first runs, one device file wins and both use it.
		if cerr := createFile(s.path(deviceFile), append(data, '\n')); cerr != nil && !errors.Is(cerr, fs.ErrExist) {
			return nil, cerr
		}
		err = readJSON(s.path(deviceFile), &s.dev)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (s *state) path(name string) string { return filepath.Join(s.dir, name) }

func (s *state) saveDevice() error {
	s.dev.LegacyContainerID = ""
	return writeJSON(s.path(deviceFile), s.dev)
}

// simStatePrefix starts the spec of a simulator with a state file.
const simStatePrefix = "sim:state="

// defaultTPM is the spec used when --tpm is not given: the one the container
// was made on, else the embedded simulator with its NV in tpm.state, so
// that wrong PINs count across commands and NV indices (rollback
// protection) last.
func (s *state) defaultTPM() string {
	if s.dev.TPM != "" {
		return s.resolveTPM(s.dev.TPM)
	}
	return simStatePrefix + s.path(tpmStateFile)
}

// resolveTPM reads a spec from device.json: a state file's relative path is
// relative to the state directory, so the directory can move.
func (s *state) resolveTPM(spec string) string {
	if p, ok := strings.CutPrefix(spec, simStatePrefix); ok && !filepath.IsAbs(p) {
		return simStatePrefix + s.path(p)
	}
	return spec
}

// recordTPM is how spec is written to device.json: a state file in the state
// directory by its name, any other state file by its absolute path.
func (s *state) recordTPM(spec string) string {
	p, ok := strings.CutPrefix(spec, simStatePrefix)
	if !ok {
		return spec
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return spec
	}
	if dir, err := filepath.Abs(s.dir); err == nil && filepath.Dir(abs) == dir {
		return simStatePrefix + filepath.Base(abs)
	}
	return simStatePrefix + abs
}

// pinPolicy is the device's managed PIN policy, or nil when device
// management set none.
func (s *state) pinPolicy() (*container.PINPolicy, error) {
	if s.dev.PINPolicy == nil {
		return nil, nil
	}
	p, err := s.dev.PINPolicy.policy()
	if err != nil {
		return nil, fmt.Errorf("%s: pin_policy: %w", s.path(deviceFile), err)
	}
	return &p, nil
}

// pinOptions are the container options that apply the managed PIN policy.
func (s *state) pinOptions() ([]container.Option, error) {
	p, err := s.pinPolicy()
	if err != nil || p == nil {
		return nil, err
	}
	return []container.Option{container.WithPINPolicy(*p)}, nil
}

// store opens the device's container store; with create, it makes the
// directory when needed, else a missing one is errNoContainer.
func (s *state) store(create bool) (*store.Store, error) {
	if create {
		return store.Open(s.path(containersDir))
	}
	st, err := store.OpenExisting(s.path(containersDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoContainer
	}
	return st, err
}

// load returns the user's container: the store holds one per user, and
// the user is the simulated directory's. A damaged container file is a
// *damagedError.
func (s *state) load() (*store.Store, *container.Container, error) {
	info, err := s.directory()
	if errors.Is(err, errNoContainer) {
		// A device provisioned against a directory over HTTPS: the user
		// is the one who signed in there.
		if rc, ok, rerr := s.readRemote(); rerr != nil {
			return nil, nil, rerr
		} else if ok {
			info, err = directory{TenantID: rc.TenantID, ObjectID: rc.UserID, UPN: rc.UPN}, nil
		}
	}
	if err != nil {
		return nil, nil, err
	}
	st, err := s.store(false)
	if err != nil {
		return nil, nil, err
	}
	c, err := st.Lookup(info.TenantID, info.ObjectID)
	var fe *store.FileError
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil, errNoContainer
	case errors.Is(err, container.ErrCorrupt) && errors.As(err, &fe):
		return nil, nil, &damagedError{path: fe.Path, err: err}
	case err != nil:
		return nil, nil, err
	}
	return st, c, nil
}

// cloud is the simulated Azure AD and PIN reset service, rebuilt in memory
// from the state directory for one command.
type cloud struct {
	info   directory
	idp    *idp.IdP
	user   idp.User
	client *service.Client // in process: the same bytes as over HTTP
	device idp.Device      // this device's object in the directory (directory.go)
}

// directory reads the simulated tenant and user; errNoContainer when there
// are none yet (provision makes them).
func (s *state) directory() (directory, error) {
	var info directory
	err := readJSON(s.path(directoryFile), &info)
	if errors.Is(err, fs.ErrNotExist) {
		return info, errNoContainer
	}
	return info, err
}

// loadCloud rebuilds the existing directory and service.
func (s *state) loadCloud() (*cloud, error) {
	cl, _, err := s.openCloud(false, "", "")
	return cl, err
}

// openCloud rebuilds the directory and the service. When create is true and
// nothing exists yet, it makes a tenant onboarded to the PIN reset service,
// a user upn with password (random when empty) and a service key; created
// says whether this run made the directory. Concurrent first runs agree on
// one directory and one key: each is created exclusively, and the loser
// uses the winner's.
func (s *state) openCloud(create bool, upn, password string) (cl *cloud, created bool, err error) {
	info, err := s.directory()
	exists := err == nil
	if err != nil && !(create && errors.Is(err, errNoContainer)) {
		return nil, false, err
	}
	if !exists {
		if password == "" {
			password = rand.Text()[:16]
		}
		info = directory{UPN: upn, Password: password}
		if _, dom, ok := cutAt(upn); ok {
			info.Domain = dom
		} else {
			return nil, false, fmt.Errorf("%w: user %q is not a UPN (name@domain)", errUsage, upn)
		}
	}
	dir, tenant, user, err := buildDirectory(info)
	if err != nil {
		return nil, false, err
	}
	if !exists {
		info.TenantID, info.ObjectID, info.TOTPSecret = tenant.ID, user.ObjectID, user.TOTPSecret()
		data, err := json.MarshalIndent(info, "", "  ")
		if err != nil {
			return nil, false, err
		}
		switch err := createFile(s.path(directoryFile), append(data, '\n')); {
		case err == nil:
			created = true
		case errors.Is(err, fs.ErrExist): // another first run won: use its directory
			if info, err = s.directory(); err != nil {
				return nil, false, err
			}
			if dir, tenant, user, err = buildDirectory(info); err != nil {
				return nil, false, err
			}
		default:
			return nil, false, err
		}
	}

	key, err := s.serviceKey(create)
	if err != nil {
		return nil, false, err
	}
	verifier, err := service.VerifierFor(dir)
	if err != nil {
		return nil, false, err
	}
	svc, err := service.New(service.Config{Verifier: verifier, Directory: dir, Keys: []protector.Unwrapper{key}})
	if err != nil {
		return nil, false, err
	}
	cl = &cloud{info: info, idp: dir, user: user, client: service.NewInProcess(svc)}
	if err := s.restoreObjects(cl); err != nil {
		return nil, false, err
	}
	return cl, created, nil
}

// buildDirectory makes the in-memory IdP for info (new IDs where info has none).
func buildDirectory(info directory) (*idp.IdP, idp.Tenant, idp.User, error) {
	// The demo password is stored in clear above, so a memory-hard hash would
	// protect nothing here; cheap Argon2id parameters (one pass over 64 KiB)
	// keep every run fast.
	dir, err := idp.New(idp.WithArgon2(idp.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}))
	if err != nil {
		return nil, idp.Tenant{}, idp.User{}, err
	}
	tenant, err := dir.AddTenant(idp.TenantConfig{
		ID: info.TenantID, Domain: info.Domain,
		ConsentedApps: []string{identity.PINResetServiceAppID, identity.PINResetClientAppID}, // onboarded to the PIN reset service
	})
	if err != nil {
		return nil, idp.Tenant{}, idp.User{}, fmt.Errorf("directory: %w", err)
	}
	user, err := dir.AddUser(idp.UserConfig{
		TenantID: tenant.ID, UPN: info.UPN, Password: info.Password,
		ObjectID: info.ObjectID, TOTPSecret: info.TOTPSecret,
	})
	if err != nil {
		return nil, idp.Tenant{}, idp.User{}, fmt.Errorf("directory: %w", err)
	}
	return dir, tenant, user, nil
}

// serviceKey reads the PIN reset service's key, creating it (exclusively)
// when create is set and there is none.
func (s *state) serviceKey(create bool) (*protector.ServicePrivateKey, error) {
	path := s.path(serviceFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		key, gerr := protector.GenerateServiceKey(protector.HPKEX25519)
		if gerr != nil {
			return nil, gerr
		}
		fresh, merr := key.MarshalBinary()
		if merr != nil {
			return nil, merr
		}
		cerr := createFile(path, fresh)
		clear(fresh)
		if cerr == nil {
			return key, nil
		}
		if !errors.Is(cerr, fs.ErrExist) {
			return nil, cerr
		}
		data, err = os.ReadFile(path) // another first run made it first
	}
	if err != nil {
		return nil, fmt.Errorf("service key: %w", err)
	}
	key, err := protector.ParsePrivateKey(data)
	clear(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// totpClaimPrefix names the files that claim a TOTP time step.
const totpClaimPrefix = ".totp-step-"

// useTOTPStep records that the code of RFC 6238 time step step was used,
// refusing a step at or before the last one used (errCodeUsed). The step is
// claimed by creating a file exclusively, so of two runs that got the same
// code accepted at the same moment only one may use it.
func (s *state) useTOTPStep(step int64) error {
	info, err := s.directory()
	if err != nil {
		return err
	}
	if step <= info.TOTPLastStep {
		return errCodeUsed
	}
	switch err := createFile(s.path(fmt.Sprintf("%s%d", totpClaimPrefix, step)), nil); {
	case errors.Is(err, fs.ErrExist):
		return errCodeUsed
	case err != nil:
		return err
	}
	// Older claims are covered by the last step from now on.
	claims, _ := filepath.Glob(s.path(totpClaimPrefix + "*"))
	for _, c := range claims {
		if n, err := strconv.ParseInt(strings.TrimPrefix(filepath.Base(c), totpClaimPrefix), 10, 64); err == nil && n < step {
			os.Remove(c)
		}
	}
	if info, err = s.directory(); err != nil {
		return err
	}
	info.TOTPLastStep = max(info.TOTPLastStep, step)
	return writeJSON(s.path(directoryFile), info)
}

func cutAt(upn string) (name, domain string, ok bool) {
	for i := len(upn) - 1; i >= 0; i-- {
		if upn[i] == '@' {
			return upn[:i], upn[i+1:], i > 0 && i < len(upn)-1
		}
	}
	return "", "", false
}

// readJSON decodes one JSON value strictly: unknown fields and trailing
// data are errors naming the file.
func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if dec.More() {
		return fmt.Errorf("%s: data after the JSON object", path)
	}
	return nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(path, append(data, '\n'))
}

// tempFile writes data to a new temporary file next to path, synced, and
// returns its name.
func tempFile(path string, data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// writeFile writes atomically and durably (temporary file, fsync, rename,
// fsync of the directory), mode 0600.
func writeFile(path string, data []byte) error {
	tmp, err := tempFile(path, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// createFile writes a new file atomically, failing with fs.ErrExist when
// path exists: the file appears whole (a hard link to a synced temporary
// file) and only one of concurrent creators wins.
func createFile(path string, data []byte) error {
	tmp, err := tempFile(path, data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a create or rename in dir durable.
func syncDir(dir string) error { return fsync.Dir(dir) }
