package reset

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/reset/policy"
)

func TestNewPolicy(t *testing.T) {
	const tid = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	deviceOn := policy.PINRecoverySetting{Enabled: true, Source: policy.DeviceMDM, TenantID: tid, Path: "csp"}
	deviceOff := policy.PINRecoverySetting{Enabled: false, Source: policy.DeviceMDM, Path: "intune"}
	p, err := NewPolicy(tid, []policy.PINRecoverySetting{deviceOn}, []string{"a.com"})
	require.NoError(t, err)
	assert.Equal(t, Policy{EnablePINRecovery: true, Source: policy.DeviceMDM, WebSignInAllowedURLs: []string{"a.com"}}, p)
	_, err = NewPolicy(tid, []policy.PINRecoverySetting{deviceOn, deviceOff}, nil)
	assert.ErrorIs(t, err, policy.ErrSettingConflict)
}

func TestPolicyAllowsHost(t *testing.T) {
	p := Policy{WebSignInAllowedURLs: []string{"signin.contoso.com"}}
	assert.True(t, p.AllowsHost("SIGNIN.contoso.com."))
	assert.False(t, p.AllowsHost("evil.signin.contoso.com"))
	assert.False(t, p.AllowsHost("contoso.com"))
}
