package idp_test

import (
	"context"
	"fmt"
	"log"

	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
)

// A tenant onboarded to the PIN reset service, a user, and a sign-in with
// password and TOTP that yields an access token the service accepts.
func Example() {
	ctx := context.Background()
	p, err := idp.New(idp.WithArgon2(idp.LightArgon2Params()))
	if err != nil {
		log.Fatal(err)
	}
	tenant, err := p.AddTenant(idp.TenantConfig{
		Domain:        "contoso.test",
		ConsentedApps: []string{identity.PINResetServiceAppID, identity.PINResetClientAppID},
	})
	if err != nil {
		log.Fatal(err)
	}
	user, err := p.AddUser(idp.UserConfig{TenantID: tenant.ID, UPN: "alice@contoso.test", Password: "correct horse battery"})
	if err != nil {
		log.Fatal(err)
	}

	pending, err := p.SignIn(ctx, user.UPN, "correct horse battery")
	if err != nil {
		log.Fatal(err)
	}
	code, err := p.TOTPCode(user.UPN) // what the user's authenticator shows
	if err != nil {
		log.Fatal(err)
	}
	token, err := pending.CompleteMFA(ctx, code)
	if err != nil {
		log.Fatal(err)
	}

	claims, err := mustVerifier(p).Verify(ctx, token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("onboarded:", tenant.Onboarded())
	fmt.Println("upn:", claims.UPN)
	fmt.Println("amr:", claims.AMR)
	fmt.Println("audience is the PIN reset service:", claims.Audience[0] == identity.PINResetServiceAppID)
	// Output:
	// onboarded: true
	// upn: alice@contoso.test
	// amr: [pwd mfa]
	// audience is the PIN reset service: true
}
