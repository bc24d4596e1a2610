package service_test

import (
	"context"
	"fmt"
	"log"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/service"
)

// The whole non-destructive exchange in one process: the client wraps its
// protector to the service's published key; later, after signing in with
// MFA, it sends the envelope with the token and gets the protector back,
// sealed to a one-time key only it holds.
func Example() {
	ctx := context.Background()

	// The directory: a tenant onboarded to both PIN reset applications.
	dir, _ := idp.New(idp.WithArgon2(idp.TestArgon2Params()))
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
	client := service.NewInProcess(svc) // or service.NewClient("https://...", nil)

	// Enrolment: wrap R to the service's current key.
	pub, _ := client.ServiceKey(ctx)
	r, _ := protector.NewKey(nil)
	env, _ := pub.Wrap(r, protector.Binding{TenantID: tenant.ID, UserID: user.ObjectID, ContainerID: "{FA0DB076-A5D7-4844-82D8-50A2FB42EC7B}"}, nil)

	// Reset: sign in with password and MFA, then recover R.
	pending, _ := dir.SignIn(ctx, user.UPN, "correct horse battery")
	code, _ := dir.TOTPCode(user.UPN)
	token, _ := pending.CompleteMFA(ctx, code)
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
