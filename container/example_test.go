package container_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"log"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/tpm"
)

// Provision a container, unlock it with the PIN and sign with the login key.
func Example() {
	ctx := context.Background()
	t, err := tpm.OpenSimulator()
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()

	c, err := container.Provision(ctx, t, container.Config{
		User:     "alice@contoso.com",
		UserID:   "6f1c2f8e-3a8b-4b6e-9a47-1b2c3d4e5f60",
		TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47",
	}, "135792")
	if err != nil {
		log.Fatal(err)
	}

	s, err := container.Unlock(ctx, t, c, "135792")
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	digest := sha256.Sum256([]byte("sign-in challenge"))
	sig, err := s.Signer().Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		log.Fatal(err)
	}
	err = rsa.VerifyPKCS1v15(c.PublicKey().(*rsa.PublicKey), crypto.SHA256, digest[:], sig)
	fmt.Println("signature verifies:", err == nil)

	_, err = container.Unlock(ctx, t, c, "000000")
	fmt.Println(err)
	// Output:
	// signature verifies: true
	// container: wrong PIN; 31 tries remain before the TPM locks
}

// Enable PIN recovery, then reset a forgotten PIN without losing the keys:
// the non-destructive PIN reset.
func ExampleSession_EnablePINRecovery() {
	ctx := context.Background()
	t, err := tpm.OpenSimulator()
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	service, err := protector.GenerateServiceKey(protector.HPKEX25519) // the PIN reset service's key
	if err != nil {
		log.Fatal(err)
	}

	c, err := container.Provision(ctx, t, container.Config{
		User: "alice@contoso.com", UserID: "6f1c2f8e-3a8b-4b6e-9a47-1b2c3d4e5f60", TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47",
	}, "135792")
	if err != nil {
		log.Fatal(err)
	}
	s, err := container.Unlock(ctx, t, c, "135792")
	if err != nil {
		log.Fatal(err)
	}
	c, err = s.EnablePINRecovery(ctx, service.Public())
	s.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("CanReset:", c.UserState().CanReset)

	// The user forgot the PIN. After MFA the service unwraps the protector…
	r, err := service.Unwrap(c.Envelope())
	if err != nil {
		log.Fatal(err)
	}
	defer r.Destroy()
	// …and the client sets a new PIN with it.
	reset, err := container.ResetPIN(ctx, t, c, r, "246801", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same NgcKeyId:", reset.KeyID() == c.KeyID())
	s, err = container.Unlock(ctx, t, reset, "246801")
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	fmt.Println("unlocked with the new PIN")
	// Output:
	// CanReset: DestructiveAndNonDestructive
	// same NgcKeyId: true
	// unlocked with the new PIN
}

// The user state as dsregcmd /status prints it.
func ExampleUserState_String() {
	s := container.UserState{
		NgcSet:              true,
		NgcKeyId:            "{FA0DB076-A5D7-4844-82D8-50A2FB42EC7B}",
		CanReset:            container.DestructiveOnly,
		WamDefaultSet:       true,
		WamDefaultAuthority: "organizations",
		WamDefaultId:        "https://login.microsoft.com",
		WamDefaultGUID:      "{ B16898C6-A148-4967-9171-64D755DA8520 } (AzureAd)",
	}
	fmt.Print(s)
	// Output:
	// +----------------------------------------------------------------------+
	// | User State                                                           |
	// +----------------------------------------------------------------------+
	//
	//                     NgcSet : YES
	//                   NgcKeyId : {FA0DB076-A5D7-4844-82D8-50A2FB42EC7B}
	//                   CanReset : DestructiveOnly
	//            WorkplaceJoined : NO
	//              WamDefaultSet : YES
	//        WamDefaultAuthority : organizations
	//               WamDefaultId : https://login.microsoft.com
	//             WamDefaultGUID : { B16898C6-A148-4967-9171-64D755DA8520 } (AzureAd)
	//
	// +----------------------------------------------------------------------+
}

// A PIN the policy refuses says which rule failed.
func ExamplePINPolicy_Check() {
	p := container.PINPolicy{MinimumLength: 6}
	fmt.Println(p.Check("1234"))
	fmt.Println(p.Check("123456"))
	fmt.Println(p.Check("135792"))
	// Output:
	// container: PIN refused by policy rule MinimumPINLength: at least 6 characters
	// container: PIN refused by policy rule ConstantDelta: digits that rise or fall by a constant step are too simple
	// <nil>
}
