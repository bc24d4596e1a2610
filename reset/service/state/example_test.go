package state_test

import (
	"context"
	"fmt"
	"time"

	"github.com/hellosim/hellosim/reset/service/state"
)

// A recover request's decision: the user must not be locked out, the
// token's and the DPoP proof's jti must be new in the tenant, and the
// user's and the tenant's buckets must each hold a token. (The client
// address's bucket spans tenants: it is an admission of its own, without a
// partition.) A second use of the same token is refused and spends nothing; a
// failure to open the envelope is counted against the user.
func Example() {
	ctx := context.Background()
	var store state.Store = state.NewMemory(state.MemoryOptions{})
	defer store.Close()

	tenant, user := "8f6ba4d2-5bd9-4e0a-9c43-0d1c6f2b7a11", "3b1e0c9a-7d44-4f2e-a8b5-6c2d9e1f0a37"
	exp := time.Now().Add(time.Hour) // the token's exp plus the verifier's skew
	a := state.Admission{
		Partition: tenant,     // every key of the decision: one shard of a cluster
		IssuedAt:  time.Now(), // the token's iat
		Locks:     []string{tenant + "/" + user},
		Once: []state.Once{
			{ID: "token-jti", Expires: exp},
			{ID: "dpop-jti", Expires: exp},
		},
		Buckets: []state.Bucket{
			{Key: "user:" + tenant + "/" + user, Limit: state.Limit{Burst: 5, Per: time.Minute}},
			{Key: "tenant:" + tenant, Limit: state.Limit{Burst: 1000, Per: time.Minute}},
		},
	}
	for range 2 {
		v, err := store.Admit(ctx, a)
		if err != nil { // state.ErrStoreUnavailable: answer 503, release nothing
			fmt.Println("503:", err)
			return
		}
		fmt.Println(v.Outcome)
	}
	f, err := store.Fail(ctx, tenant, tenant+"/"+user, state.DefaultLockout())
	if err != nil {
		fmt.Println("503:", err)
		return
	}
	fmt.Println("failures:", f.Count, "locked:", !f.LockedUntil.IsZero())
	// Output:
	// admitted
	// replayed
	// failures: 1 locked: false
}
