package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/idp/drs"
	"github.com/hellosim/hellosim/reset/keycred"
	"github.com/hellosim/hellosim/tpm"
)

// What the directory holds beyond the tenant and user of directory.json —
// the device object and the registered Hello keys — is kept in
// directory-objects.json and restored into the in-memory directory by
// every command, so that provisioning, resets and sign-ins change it the
// way they change Entra.
const objectsFile = "directory-objects.json"

type savedObjects struct {
	Device savedDevice `json:"device"`
	Keys   []savedKey  `json:"keys"`
}

type savedDevice struct {
	DeviceID     string    `json:"device_id"`
	DisplayName  string    `json:"display_name"`
	RegisteredAt time.Time `json:"registered_at"`
}

type savedKey struct {
	KeyID        string    `json:"key_id"`
	KID          string    `json:"kid"`
	DeviceID     string    `json:"device_id,omitempty"`
	KNGC         string    `json:"kngc"` // base64 of the BCRYPT public key blob
	RegisteredAt time.Time `json:"registered_at"`
	LastSignIn   time.Time `json:"last_sign_in,omitzero"`
	Attested     bool      `json:"attested,omitempty"`
	WithoutMFA   bool      `json:"without_mfa,omitempty"`
}

// restoreObjects loads the device object and keys into cl's directory,
// when they have been saved.
func (s *state) restoreObjects(cl *cloud) error {
	var saved savedObjects
	err := readJSON(s.path(objectsFile), &saved)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// No device object until the device joins (state.join), which
		// needs the TPM: the object takes the device identity's ID.
		return nil
	case err != nil:
		return err
	}
	if saved.Device.DeviceID != "" {
		d, err := cl.idp.AddDevice(idp.DeviceConfig{
			TenantID: cl.info.TenantID, DeviceID: saved.Device.DeviceID, DisplayName: saved.Device.DisplayName,
			JoinType: identity.AzureADJoined, RegisteredAt: saved.Device.RegisteredAt,
		})
		if err != nil {
			return fmt.Errorf("%s: device: %w", s.path(objectsFile), err)
		}
		cl.device = d
	}
	for _, k := range saved.Keys {
		blob, err := base64.StdEncoding.DecodeString(k.KNGC)
		if err != nil {
			return fmt.Errorf("%s: key %s: %w", s.path(objectsFile), k.KID, err)
		}
		pub, err := keycred.ParsePublicKey(blob)
		if err != nil {
			return fmt.Errorf("%s: key %s: %w", s.path(objectsFile), k.KID, err)
		}
		if err := cl.idp.RestoreKey(idp.RegisteredKey{
			KeyID: k.KeyID, KID: k.KID, TenantID: cl.user.TenantID, ObjectID: cl.user.ObjectID, Public: pub,
			RegisteredAt: k.RegisteredAt, DeviceID: k.DeviceID, LastSignIn: k.LastSignIn,
			Attested: k.Attested, WithoutMFA: k.WithoutMFA,
		}); err != nil {
			return fmt.Errorf("%s: %w", s.path(objectsFile), err)
		}
	}
	return nil
}

// saveObjects writes the device and the user's registered keys.
func (s *state) saveObjects(cl *cloud) error {
	keys, err := cl.idp.RegisteredKeys(cl.user.UPN)
	if err != nil {
		return err
	}
	var out savedObjects
	if cl.device.DeviceID != "" {
		out.Device = savedDevice{DeviceID: cl.device.DeviceID, DisplayName: cl.device.DisplayName, RegisteredAt: cl.device.RegisteredAt}
	}
	for _, k := range keys {
		blob, err := keycred.MarshalPublicKey(k.Public)
		if err != nil {
			return err
		}
		out.Keys = append(out.Keys, savedKey{
			KeyID: k.KeyID, KID: k.KID, DeviceID: k.DeviceID, KNGC: base64.StdEncoding.EncodeToString(blob),
			RegisteredAt: k.RegisteredAt, LastSignIn: k.LastSignIn, Attested: k.Attested, WithoutMFA: k.WithoutMFA,
		})
	}
	return writeJSON(s.path(objectsFile), out)
}

// drs is the device registration service as the device reaches it: its
// handler in process, with the same requests and answers as over HTTP.
// Its token is the DRS token of the sign-in *pending refers to when the
// call is made, bound to the device's key, and each request carries a
// DPoP proof of that key.
func (cl *cloud) drs(pending **idp.Pending, dev *joined) *drs.Client {
	c := drs.NewInProcess(drs.Handler(cl.idp)).WithDevice(dev.key).WithClock(cl.idp.Now)
	c.Token = func(ctx context.Context) (string, error) {
		if *pending == nil {
			return "", errors.New("no signed-in session to ask for a device registration token")
		}
		return (*pending).DeviceToken(ctx, dev.dev.ID(), idp.DRSResource)
	}
	return c
}

// registerLoginKey registers c's login key as Windows does right after
// provisioning: the device joins (once), the signed-in session (here: the
// demo user's password and authenticator code, which the simulator keeps)
// is bound to the device key and asks for a device-bound DRS token with
// ngcmfa, and the key goes to POST /EnrollmentServer/key/ with a DPoP
// proof of the device key.
func (a *app) registerLoginKey(ctx context.Context, st *state, cl *cloud, t *tpm.TPM, c *container.Container) error {
	dev, err := st.join(ctx, t, cl)
	if err != nil {
		return err
	}
	defer dev.key.Close()
	pending, err := cl.idp.SignIn(ctx, cl.info.UPN, cl.info.Password)
	if err != nil {
		return fmt.Errorf("sign in to register the key: %w", err)
	}
	if err := dev.bind(ctx, cl, pending); err != nil {
		return fmt.Errorf("sign in to register the key: %w", err)
	}
	code, err := idp.TOTPCodeAt(cl.info.TOTPSecret, cl.idp.Now())
	if err != nil {
		return err
	}
	if _, err := pending.CompleteMFA(ctx, code); err != nil {
		return fmt.Errorf("sign in to register the key: %w", err)
	}
	return a.registerWith(ctx, st, cl, dev, pending, c)
}

// registerWith registers c's login key through the DRS endpoint with the
// signed-in session pending, bound to the device dev and past MFA.
func (a *app) registerWith(ctx context.Context, st *state, cl *cloud, dev *joined, pending *idp.Pending, c *container.Container) error {
	// The same reset.Directory a destructive reset registers through; it
	// asks the session for the device-bound DRS token, so no token is
	// passed here.
	var dir reset.Directory = cl.drs(&pending, dev)
	if err := dir.RegisterKey(ctx, "", c.KeyID(), c.PublicKey()); err != nil {
		return fmt.Errorf("register the login key: %w", err)
	}
	kid, err := keycred.PublicKeyIdentifier(c.PublicKey())
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Login key registered with the device registration service: kid %s for %s (device %s).\n", kid, cl.info.UPN, dev.dev.ID())
	return st.saveObjects(cl)
}

func cmdDirectory() *command {
	var asJSON bool
	return &command{
		name: "directory", args: "[-json]",
		summary: "Show what the directory holds: the user object with its msDS-KeyCredentialLink values, the device object.",
		flags:   boolFlag(&asJSON, "json", "print JSON"),
		run: func(ctx context.Context, a *app, _ *flag.FlagSet) error {
			st, err := a.openState(false)
			if err != nil {
				return err
			}
			var v view
			if rc, ok, err := st.readRemote(); err != nil {
				return err
			} else if ok {
				v, err = a.remoteDirectoryView(ctx, st, rc)
				if err != nil {
					return err
				}
			} else {
				cl, err := st.loadCloud()
				if err != nil {
					return err
				}
				if v, err = directoryView(cl); err != nil {
					return err
				}
			}
			if asJSON {
				b, err := json.MarshalIndent(v, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, string(b))
				return nil
			}
			printDirectory(a, v)
			return nil
		},
	}
}

type viewKey struct {
	KeyID        string    `json:"keyId"`
	Usage        string    `json:"usage"`
	Source       string    `json:"source"`
	DeviceID     string    `json:"deviceId,omitempty"`
	Flags        string    `json:"flags"`
	CreationTime time.Time `json:"creationTime"`
	LastLogon    time.Time `json:"lastLogonTime"`
	KeySize      string    `json:"key"`
}

type viewUser struct {
	ObjectID          string    `json:"objectId"`
	UserPrincipalName string    `json:"userPrincipalName"`
	TenantID          string    `json:"tenantId"`
	KeyCredentialLink []string  `json:"msDS-KeyCredentialLink"`
	KeyCredentials    []viewKey `json:"keyCredentials"`
	// The on-premises user, for hybrid tenants: its DN and the values
	// written back to its msDS-KeyCredentialLink for key trust.
	DistinguishedName string   `json:"distinguishedName,omitempty"`
	OnPremisesLinks   []string `json:"onPremisesKeyCredentialLink,omitempty"`
}

type viewDevice struct {
	DeviceID     string    `json:"deviceId"`
	DisplayName  string    `json:"displayName"`
	TrustType    string    `json:"trustType"`
	RegisteredAt time.Time `json:"registrationDateTime"`
}

type view struct {
	User    viewUser     `json:"user"`
	Devices []viewDevice `json:"devices"`
}

// directoryView reads the simulated directory's user and the tenant's
// devices.
func directoryView(cl *cloud) (view, error) {
	u, err := cl.idp.DirectoryUser(cl.info.UPN)
	if err != nil {
		return view{}, err
	}
	return viewOf(u, cl.idp.Devices(cl.info.TenantID))
}

// viewOf decodes each msDS-KeyCredentialLink value of u with keycred, as a
// tool reading the directory would.
func viewOf(u idp.DirectoryUser, devices []idp.Device) (view, error) {
	v := view{User: viewUser{
		ObjectID: u.ObjectID, UserPrincipalName: u.UPN, TenantID: u.TenantID, DistinguishedName: u.DistinguishedName,
		KeyCredentialLink: []string{}, KeyCredentials: []viewKey{},
	}}
	for _, k := range u.Keys {
		kc, _, err := keycred.ParseAttributeValue(k.KeyCredentialLink)
		if err != nil {
			return view{}, err
		}
		pub, err := kc.PublicKey()
		if err != nil {
			return view{}, err
		}
		v.User.KeyCredentialLink = append(v.User.KeyCredentialLink, k.KeyCredentialLink)
		if k.OnPremisesKeyCredentialLink != "" {
			v.User.OnPremisesLinks = append(v.User.OnPremisesLinks, k.OnPremisesKeyCredentialLink)
		}
		flags := "None"
		if kc.CustomKeyInfo != nil {
			flags = kc.CustomKeyInfo.Flags.String()
		}
		v.User.KeyCredentials = append(v.User.KeyCredentials, viewKey{
			KeyID: kc.ID(), Usage: kc.Usage.String(), Source: kc.Source.String(), DeviceID: kc.DeviceID,
			Flags: flags, CreationTime: kc.Created, LastLogon: kc.LastLogon, KeySize: describeKey(pub),
		})
	}
	for _, d := range devices {
		v.Devices = append(v.Devices, viewDevice{DeviceID: d.DeviceID, DisplayName: d.DisplayName, TrustType: "AzureAd", RegisteredAt: d.RegisteredAt})
	}
	return v, nil
}

func describeKey(pub any) string {
	if b, err := keycred.MarshalPublicKey(pub); err == nil {
		return strings.TrimRight(string(b[:4]), "\x00") + fmt.Sprintf(" (%d bytes)", len(b))
	}
	return fmt.Sprintf("%T", pub)
}

func printDirectory(a *app, v view) {
	w := a.stdout
	line := func(k, val string) { fmt.Fprintf(w, "  %-22s : %s\n", k, val) }
	fmt.Fprintln(w, "User object")
	line("objectId", v.User.ObjectID)
	line("userPrincipalName", v.User.UserPrincipalName)
	line("tenantId", v.User.TenantID)
	line("msDS-KeyCredentialLink", fmt.Sprintf("%d value(s)", len(v.User.KeyCredentialLink)))
	for i, k := range v.User.KeyCredentials {
		fmt.Fprintf(w, "    %s\n", v.User.KeyCredentialLink[i])
		fmt.Fprintf(w, "      KeyID %s, %s, source %s, flags %s, key %s\n", k.KeyID, k.Usage, k.Source, k.Flags, k.KeySize)
		fmt.Fprintf(w, "      device %s, created %s, last logon %s\n", k.DeviceID, k.CreationTime.Format(time.RFC3339), k.LastLogon.Format(time.RFC3339))
	}
	for _, d := range v.Devices {
		fmt.Fprintln(w, "Device object")
		line("deviceId", d.DeviceID)
		line("displayName", d.DisplayName)
		line("trustType", d.TrustType)
		line("registrationDateTime", d.RegisteredAt.Format(time.RFC3339))
	}
}

func cmdSignIn() *command {
	return &command{
		name: "sign-in", args: "",
		summary: "Sign in with the Hello key: the PIN unlocks the login key, which signs the directory's nonce.",
		run: func(ctx context.Context, a *app, _ *flag.FlagSet) error {
			st, _, c, err := a.loadContainer()
			if err != nil {
				return err
			}
			if rc, ok, err := st.readRemote(); err != nil {
				return err
			} else if ok {
				// The directory over HTTPS: checked before the PIN is asked.
				r, err := dialDirectory(ctx, rc)
				if err != nil {
					return err
				}
				return a.signInWithKey(ctx, st, c, r)
			}
			cl, err := st.loadCloud()
			if err != nil {
				return err
			}
			if err := a.signInWithKey(ctx, st, c, inProcessSignIn{cl.idp}); err != nil {
				return err
			}
			return st.saveObjects(cl)
		},
	}
}

// unverifiedClaims decodes a token the directory just issued in process.
func unverifiedClaims(tok string) (map[string]any, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("token is not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(raw, &m)
}
