package policy_test

import (
	"fmt"
	"log"

	"github.com/hellosim/hellosim/reset/policy"
)

// A custom OMA-URI profile's setting, as an MDM delivers it.
func ExampleParsePINRecoveryOMA() {
	s, err := policy.ParsePINRecoveryOMA(
		"./Vendor/MSFT/Policy/PassportForWork/72f988bf-86f1-41af-91ab-2d7cd011db47/Policies/EnablePinRecovery", "True")
	if err != nil {
		log.Fatal(err)
	}
	gpo := policy.PINRecoveryFromGPO(policy.GPODisabled, false)
	eff, err := policy.ResolvePINRecovery(s.TenantID, s, gpo)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Enabled, s.Source)
	fmt.Println(eff.Enabled, eff.Source)
	// Output:
	// true device-mdm
	// false computer-gpo
}
