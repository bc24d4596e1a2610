package protector_test

import (
	"fmt"
	"log"

	"github.com/hellosim/hellosim/protector"
)

// A client wraps its protector to the service's current key; the service
// unwraps it after checking the user's token against the binding.
func Example() {
	// The service: a key, published as a key set.
	service, err := protector.GenerateServiceKey(protector.HPKEX25519)
	if err != nil {
		log.Fatal(err)
	}
	published, err := protector.KeySet{Keys: []protector.ServiceKey{service.Public()}}.MarshalJSON()
	if err != nil {
		log.Fatal(err)
	}

	// The client: parse the key set, make a protector, wrap it.
	set, err := protector.ParseKeySet(published)
	if err != nil {
		log.Fatal(err)
	}
	current, err := set.Current()
	if err != nil {
		log.Fatal(err)
	}
	r, err := protector.NewKey(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Destroy()
	binding := protector.Binding{
		TenantID:    "8f6ba4d2-5bd9-4e0a-9c43-0d1c6f2b7a11",
		UserID:      "3b1e0c9a-7d44-4f2e-a8b5-6c2d9e1f0a37",
		ContainerID: "{FA0DB076-A5D7-4844-82D8-50A2FB42EC7B}",
	}
	env, err := current.Wrap(r, binding, nil)
	if err != nil {
		log.Fatal(err)
	}
	stored, err := env.MarshalBinary()
	if err != nil {
		log.Fatal(err)
	}

	// Later, the service receives the stored envelope.
	received, err := protector.ParseEnvelope(stored)
	if err != nil {
		log.Fatal(err)
	}
	recovered, err := service.Unwrap(received)
	if err != nil {
		log.Fatal(err)
	}
	defer recovered.Destroy()
	fmt.Println("bound to user:", received.Binding().UserID)
	fmt.Println("same protector:", recovered.Equal(r))
	fmt.Println("printed:", recovered)
	// Output:
	// bound to user: 3b1e0c9a-7d44-4f2e-a8b5-6c2d9e1f0a37
	// same protector: true
	// printed: protector.Key{REDACTED}
}

// The service returns the protector sealed to a one-time key from the
// client, so it is never in clear on the wire.
func ExampleSealToReturnKey() {
	service, err := protector.GenerateServiceKey(protector.HPKEXWing)
	if err != nil {
		log.Fatal(err)
	}
	r, _ := protector.NewKey(nil)
	defer r.Destroy()
	env, err := service.Public().Wrap(r, protector.Binding{TenantID: "t", UserID: "u", ContainerID: "c"}, nil)
	if err != nil {
		log.Fatal(err)
	}

	// Client: a fresh return key, sent with the request.
	rk, err := protector.NewReturnKey()
	if err != nil {
		log.Fatal(err)
	}
	defer rk.Destroy()

	// Service: unwrap, then seal to the client's key.
	unwrapped, err := service.Unwrap(env)
	if err != nil {
		log.Fatal(err)
	}
	sealed, err := protector.SealToReturnKey(rk.PublicKey(), unwrapped, env)
	unwrapped.Destroy()
	if err != nil {
		log.Fatal(err)
	}

	// Client: open.
	got, err := rk.Open(sealed, env)
	if err != nil {
		log.Fatal(err)
	}
	defer got.Destroy()
	fmt.Println(len(sealed), got.Equal(r))
	// Output: 80 true
}

// The container secret is kept encrypted under the protector, bound to the
// container it belongs to.
func ExampleKey_Seal() {
	r, _ := protector.NewKey(nil)
	defer r.Destroy()
	secret := make([]byte, 32) // S
	sealed, err := r.Seal(secret, "{FA0DB076-A5D7-4844-82D8-50A2FB42EC7B}")
	if err != nil {
		log.Fatal(err)
	}
	_, err = r.Open(sealed, "{00000000-0000-0000-0000-000000000000}")
	fmt.Println(err)
	// Output: protector: decryption failed
}
