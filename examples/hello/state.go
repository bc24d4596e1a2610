package main

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/service"
)

// The state directory holds three parties' data, each in its own file, as if
// they lived on different machines:
//
//	device.json      the device: simulator seed, TPM spec, container ID, policy
//	containers/      the device: the Hello container (container.Store)
//	directory.json   the simulated Azure AD tenant and user (demo password and
//	                 TOTP secret in clear: this is a simulator)
//	service.key      the PIN reset service's private key
const (
	deviceFile    = "device.json"
	directoryFile = "directory.json"
	serviceFile   = "service.key"
	containersDir = "containers"
)

// device is what the device keeps between runs.
type device struct {
	// Seed of the embedded simulator: the same seed gives the same storage
	// root key, so the container's blobs load in every run.
	Seed int64 `json:"seed"`
	// TPM is the spec the container was provisioned on ("sim:seed=N",
	// "tcp://127.0.0.1:2321", "/dev/tpmrm0").
	TPM string `json:"tpm,omitempty"`
	// ContainerID is the user's container in containers/.
	ContainerID string `json:"container_id,omitempty"`
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
}

// state is an open state directory.
type state struct {
	dir string
	dev device
}

var errNoContainer = errors.New("no Hello container: run 'hello provision' first")

// openState opens (creating when needed) the state directory and its device
// file. A new device gets a random simulator seed.
func openState(dir string) (*state, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	s := &state{dir: dir}
	err := readJSON(filepath.Join(dir, deviceFile), &s.dev)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		s.dev.Seed = int64(binary.BigEndian.Uint64(b[:]) >> 1)
		if err := s.saveDevice(); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	return s, nil
}

func (s *state) path(name string) string { return filepath.Join(s.dir, name) }

func (s *state) saveDevice() error { return writeJSON(s.path(deviceFile), s.dev) }

// defaultTPM is the spec used when --tpm is not given: the one the container
// was made on, else the seeded simulator.
func (s *state) defaultTPM() string {
	if s.dev.TPM != "" {
		return s.dev.TPM
	}
	return fmt.Sprintf("sim:seed=%d", s.dev.Seed)
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

func (s *state) store() (*container.Store, error) {
	return container.OpenStore(s.path(containersDir))
}

// load returns the device's container.
func (s *state) load() (*container.Store, *container.Container, error) {
	st, err := s.store()
	if err != nil {
		return nil, nil, err
	}
	if s.dev.ContainerID == "" {
		return nil, nil, errNoContainer
	}
	c, err := st.Load(s.dev.ContainerID)
	if errors.Is(err, container.ErrNotFound) {
		return nil, nil, errNoContainer
	}
	if err != nil {
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
func (s *state) loadCloud() (*cloud, error) { return s.openCloud(false, "", "") }

// openCloud rebuilds the directory and the service. When create is true and
// nothing exists yet, it makes a tenant onboarded to the PIN reset service,
// a user upn with password (random when empty) and a service key.
func (s *state) openCloud(create bool, upn, password string) (*cloud, error) {
	info, err := s.directory()
	exists := err == nil
	if err != nil && !(create && errors.Is(err, errNoContainer)) {
		return nil, err
	}
	if !exists {
		if password == "" {
			password = rand.Text()[:16]
		}
		info = directory{UPN: upn, Password: password}
		if _, dom, ok := cutAt(upn); ok {
			info.Domain = dom
		} else {
			return nil, fmt.Errorf("%w: user %q is not a UPN (name@domain)", errUsage, upn)
		}
	}

	// The demo password is stored in clear above, so a memory-hard hash would
	// protect nothing here; cheap Argon2id parameters keep every run fast.
	dir, err := idp.New(idp.WithArgon2(idp.TestArgon2Params()))
	if err != nil {
		return nil, err
	}
	tenant, err := dir.AddTenant(idp.TenantConfig{
		ID: info.TenantID, Domain: info.Domain,
		ConsentedApps: []string{identity.PINResetServiceAppID, identity.PINResetClientAppID}, // onboarded to the PIN reset service
	})
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	user, err := dir.AddUser(idp.UserConfig{
		TenantID: tenant.ID, UPN: info.UPN, Password: info.Password,
		ObjectID: info.ObjectID, TOTPSecret: info.TOTPSecret,
	})
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}

	var key *protector.ServicePrivateKey
	data, err := os.ReadFile(s.path(serviceFile))
	switch {
	case err == nil:
		key, err = protector.ParsePrivateKey(data)
		clear(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.path(serviceFile), err)
		}
	case errors.Is(err, fs.ErrNotExist) && !exists:
		key, err = protector.GenerateServiceKey(protector.HPKEX25519)
		if err != nil {
			return nil, err
		}
		data, err := key.MarshalBinary()
		if err != nil {
			return nil, err
		}
		err = writeFile(s.path(serviceFile), data)
		clear(data)
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("service key: %w", err)
	}
	verifier, err := service.VerifierFor(dir)
	if err != nil {
		return nil, err
	}
	svc, err := service.New(service.Config{Verifier: verifier, Directory: dir, Keys: []protector.Unwrapper{key}})
	if err != nil {
		return nil, err
	}

	if !exists {
		info.TenantID, info.ObjectID, info.TOTPSecret = tenant.ID, user.ObjectID, user.TOTPSecret()
		if err := writeJSON(s.path(directoryFile), info); err != nil {
			return nil, err
		}
	}
	return &cloud{info: info, idp: dir, user: user, client: service.NewInProcess(svc)}, nil
}

func cutAt(upn string) (name, domain string, ok bool) {
	for i := len(upn) - 1; i >= 0; i-- {
		if upn[i] == '@' {
			return upn[:i], upn[i+1:], i > 0 && i < len(upn)-1
		}
	}
	return "", "", false
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
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

// writeFile writes atomically (temporary file, rename), mode 0600.
func writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
