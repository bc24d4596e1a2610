package service_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"log"
	"time"

	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/service"
)

// The whole non-destructive exchange in one process: the device joins the
// directory with its own key (a TPM key on a real device: device.Device;
// a software key here), the client wraps its protector to the service's
// published key, bound to the device; later, after signing in with MFA on
// the device, it sends the envelope with the device-bound token and a proof
// by the device key, and gets the protector back, sealed to a one-time key
// only it holds.
func Example() {
	ctx := context.Background()
	deviceKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	const deviceID = "5d2c9f3e-8b1a-4c7d-9e6f-0a1b2c3d4e5f"

	// The directory: a tenant onboarded to both PIN reset applications.
	dir, _ := idp.New(idp.WithArgon2(idp.LightArgon2Params()))
	tenant, _ := dir.AddTenant(idp.TenantConfig{Domain: "contoso.test", ConsentedApps: []string{identity.PINResetServiceAppID, identity.PINResetClientAppID}})
	user, _ := dir.AddUser(idp.UserConfig{TenantID: tenant.ID, UPN: "alice@contoso.test", Password: "correct horse battery"})

	// The service, with one HPKE X25519 key.
	key, err := protector.GenerateServiceKey(protector.HPKEX25519)
	if err != nil {
		log.Fatal(err)
	}
	svc, err := service.New(service.Config{
		Verifier:  mustVerifier(dir),
		Directory: dir,
		Keys:      []protector.Unwrapper{key},
	})
	if err != nil {
		log.Fatal(err)
	}
	// or service.NewClient("https://...", nil)
	client := service.NewInProcess(svc).WithDevice(deviceKey)

	// Join: the user signs in with MFA and registers the device.
	pending, _ := dir.SignIn(ctx, user.UPN, "correct horse battery")
	code, _ := dir.TOTPCode(user.UPN)
	joinToken, _ := pending.CompleteMFA(ctx, code)
	if err := dir.RegisterDevice(ctx, joinToken, deviceID, &deviceKey.PublicKey); err != nil {
		log.Fatal(err)
	}

	// Enrolment: wrap R to the service's current key, bound to the device.
	pub, _ := client.ServiceKey(ctx)
	r, _ := protector.NewKey(nil)
	env, _ := pub.Wrap(r, protector.Binding{TenantID: tenant.ID, UserID: user.ObjectID,
		ContainerID: "{FA0DB076-A5D7-4844-82D8-50A2FB42EC7B}", DeviceID: deviceID}, nil)

	// Reset: the sign-in is bound to the device (a proof by its key to the
	// token endpoint); its tokens are DPoP-bound. Then recover R.
	bind, _ := dpopProof(deviceKey, dir.TokenEndpoint(tenant.ID))
	if err := pending.BindDevice(ctx, deviceID, bind); err != nil {
		log.Fatal(err)
	}
	token, _ := pending.Refresh(ctx)
	got, err := client.Recover(ctx, token, env)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("recovered the protector:", got.Equal(r))
	got.Destroy()
	r.Destroy()

	// The same token again is a replay.
	_, err = client.Recover(ctx, token, env)
	fmt.Println(err)
	// Output:
	// recovered the protector: true
	// pin reset service: 401 token_replayed: access token already used
}

// dpopProof is the device's proof to the IdP's token endpoint.
func dpopProof(key *ecdsa.PrivateKey, htu string) (string, error) {
	return dpop.Sign(key, dpop.Claims{HTM: "POST", HTU: htu, IAT: time.Now().Unix(), JTI: randString(12)})
}
