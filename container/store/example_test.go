package store_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/container/store"
	"github.com/hellosim/hellosim/tpm"
)

// A store keeps containers across runs; Save refuses to go back in time.
func Example() {
	ctx := context.Background()
	t, err := tpm.OpenSimulator()
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	dir, err := os.MkdirTemp("", "ngc")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	st, err := store.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	c, err := container.Provision(ctx, t, container.Config{
		User: "alice@contoso.com", UserID: "6f1c2f8e-3a8b-4b6e-9a47-1b2c3d4e5f60", TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47",
	}, "135792")
	if err != nil {
		log.Fatal(err)
	}
	n, err := container.ChangePIN(ctx, t, c, "135792", "246801")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Save(n))
	fmt.Println(errors.Is(st.Save(c), store.ErrConflict))
	loaded, err := st.Load(c.ID())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("generation", loaded.Generation())
	// Output:
	// <nil>
	// true
	// generation 2
}
