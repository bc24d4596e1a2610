package examples_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container/store"
	"github.com/hellosim/hellosim/reset/keycred"
)

// directoryJSON is the part of 'hello directory -json' the test reads.
type directoryJSON struct {
	User struct {
		UPN            string   `json:"userPrincipalName"`
		Links          []string `json:"msDS-KeyCredentialLink"`
		KeyCredentials []struct {
			KeyID    string `json:"keyId"`
			DeviceID string `json:"deviceId"`
			Source   string `json:"source"`
		} `json:"keyCredentials"`
	} `json:"user"`
	Devices []struct {
		DeviceID string `json:"deviceId"`
	} `json:"devices"`
}

func (h *helloCLI) directoryObjects() directoryJSON {
	h.t.Helper()
	r := h.expect(exitOK, "", "directory", "-json")
	var d directoryJSON
	require.NoError(h.t, json.Unmarshal([]byte(r.stdout), &d), r.stdout)
	return d
}

// containerKID is the identifier of the stored container's login key.
func (h *helloCLI) containerKID() string {
	h.t.Helper()
	// The store holds one container per user: the user's is the only one.
	st, err := store.Open(filepath.Join(h.state, "containers"))
	require.NoError(h.t, err)
	ids, err := st.List()
	require.NoError(h.t, err)
	require.Len(h.t, ids, 1)
	c, err := st.Load(ids[0])
	require.NoError(h.t, err)
	kid, err := keycred.PublicKeyIdentifier(c.PublicKey())
	require.NoError(h.t, err)
	return kid
}

// The directory holds one msDS-KeyCredentialLink value for the device's
// login key: provisioning registers it, a non-destructive reset keeps it,
// a destructive reset replaces it; signing in with the key works only with
// the right PIN.
func TestHelloDirectoryFollowsProvisionAndResets(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	h := &helloCLI{t: t, state: filepath.Join(home, "state"), home: home}
	const password = "demo password 42"

	h.expect(exitNoContainer, "", "directory")
	r := h.expect(exitOK, "135792\n135792\n", "provision", "-password", password)
	assert.Contains(t, r.stdout, "Login key registered with the device registration service")

	check := func(what string) directoryJSON {
		t.Helper()
		d := h.directoryObjects()
		require.Len(t, d.User.Links, 1, what)
		require.Len(t, d.Devices, 1, what)
		k, owner, err := keycred.ParseAttributeValue(d.User.Links[0])
		require.NoError(t, err, what)
		assert.Equal(t, d.User.UPN, owner)
		assert.Equal(t, keycred.KeySourceAzureAD, k.Source)
		assert.Equal(t, d.Devices[0].DeviceID, k.DeviceID)
		assert.Equal(t, h.containerKID(), k.ID(), "%s: the directory holds the container's login key", what)
		assert.Equal(t, k.ID(), d.User.KeyCredentials[0].KeyID)
		return d
	}
	provisioned := check("after provisioning")

	r = h.expect(exitWrongPIN, "000000\n", "sign-in")
	r = h.expect(exitOK, "135792\n", "sign-in")
	assert.Contains(t, r.stdout, "amr [rsa mfa ngcmfa]")
	assert.Contains(t, r.stdout, "deviceid "+provisioned.Devices[0].DeviceID)

	h.expect(exitOK, "135792\n", "enable-recovery")
	h.expect(exitOK, password+"\n"+h.totp()+"\n582046\n582046\n", "reset", "--non-destructive")
	kept := check("after the non-destructive reset")
	assert.Equal(t, provisioned.User.KeyCredentials[0].KeyID, kept.User.KeyCredentials[0].KeyID, "the value is kept")

	h.expect(exitOK, password+"\n"+h.totp()+"\n917364\n917364\n", "reset", "--destructive", "-y")
	replaced := check("after the destructive reset")
	assert.NotEqual(t, kept.User.KeyCredentials[0].KeyID, replaced.User.KeyCredentials[0].KeyID, "the value is replaced")
	r = h.expect(exitOK, "917364\n", "sign-in")
	assert.Contains(t, r.stdout, replaced.User.KeyCredentials[0].KeyID)
}
