package keycred_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/hellosim/hellosim/reset/keycred"
)

// Reading an msDS-KeyCredentialLink value as LDAP returns it.
func Example_readAttributeValue() {
	raw, err := os.ReadFile("testdata/link-ad.dnbinary.txt")
	if err != nil {
		fmt.Println(err)
		return
	}
	k, owner, err := keycred.ParseAttributeValue(strings.TrimSpace(string(raw)))
	if err != nil {
		fmt.Println(err)
		return
	}
	pub, err := k.PublicKey()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("owner:  ", owner)
	fmt.Println("usage:  ", k.Usage, "source:", k.Source, "flags:", k.CustomKeyInfo.Flags)
	fmt.Println("device: ", k.DeviceID)
	fmt.Println("created:", k.Created.Format("2006-01-02T15:04:05.0000000Z07:00"))
	fmt.Printf("key:     %T\n", pub)
	// Output:
	// owner:   CN=Jane Doe,OU=Users,DC=contoso,DC=com
	// usage:   NGC source: AD flags: None
	// device:  cfe9a872-13ff-4751-a777-aec88c30a762
	// created: 2026-12-03T14:00:00.0000000Z
	// key:     *rsa.PublicKey
}
