package state

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/redistest"
)

// TestRedisClusterOneSlotPerDecision: on a real three-node Redis Cluster,
// the decisions of tenants spread over every shard are each one script:
// admitted, then replayed, a user locked out by failures at one store
// refused at another, and every key a decision wrote (lockout, failure
// window, one-time IDs, buckets, the epoch) in the tenant's slot, as the
// servers themselves compute it. Without the partition as the hash tag of
// every key, the cluster refuses the scripts (CROSSSLOT) and nothing is
// admitted.
func TestRedisClusterOneSlotPerDecision(t *testing.T) {
	c := redistest.StartCluster(t)
	prefix := testPrefix(t)
	a := newRedisStore(t, c.URL(), RedisOptions{Prefix: prefix})
	b := newRedisStore(t, c.URL(), RedisOptions{Prefix: prefix})
	admin := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	t.Cleanup(func() { admin.Close() })
	ctx := context.Background()

	// The first decision of a slot sets the slot's epoch: start each
	// tenant's slot with one, as a store that has been running.
	const tenants = 9
	for i := range tenants {
		_, err := a.Admit(ctx, Admission{Partition: clusterTenant(i)})
		require.NoError(t, err)
	}
	time.Sleep(5 * time.Millisecond)

	masters := map[string]bool{}
	lock := Lockout{Failures: 3, Window: time.Hour, Base: time.Minute, Max: time.Hour}
	for i := range tenants {
		tenant := clusterTenant(i)
		user := tenant + "/user"
		adm := Admission{
			Partition: tenant,
			IssuedAt:  time.Now(),
			Locks:     []string{user},
			Once: []Once{
				{ID: "token-jti", Expires: time.Now().Add(time.Hour)},
				{ID: "dpop-jti", Expires: time.Now().Add(time.Hour)},
			},
			Buckets: []Bucket{
				{Key: "user:" + user, Limit: Limit{Burst: 5, Per: time.Minute}},
				{Key: "tenant:" + tenant, Limit: Limit{Burst: 100, Per: time.Minute}},
			},
		}
		require.Equal(t, Admitted, admit(t, a, adm).Outcome, tenant)
		assert.Equal(t, Verdict{Outcome: Replayed}, admit(t, b, adm), "%s: the other store sees the IDs", tenant)

		for n := range lock.Failures {
			f, err := []*Redis{a, b}[n%2].Fail(ctx, tenant, user, lock)
			require.NoError(t, err)
			assert.Equal(t, n+1, f.Count)
		}
		adm.Once = []Once{{ID: "fresh", Expires: time.Now().Add(time.Hour)}}
		v := admit(t, b, adm)
		assert.Equal(t, LockedOut, v.Outcome, tenant)
		assert.InDelta(t, time.Minute.Seconds(), v.RetryAfter.Seconds(), 1)
		ep, err := b.Epoch(ctx, tenant)
		require.NoError(t, err)
		assert.False(t, ep.IsZero(), "%s: the slot has an epoch", tenant)

		// Every key the tenant's decisions wrote, and its slot's epoch,
		// live in the tenant's slot on one master, by the server's count.
		slot := admin.ClusterKeySlot(ctx, "{"+tenant+"}").Val()
		m, err := admin.MasterForKey(ctx, "{"+tenant+"}")
		require.NoError(t, err)
		masters[m.Options().Addr] = true
		keys, err := m.Keys(ctx, prefix+"*").Result()
		require.NoError(t, err)
		var kinds []string
		for _, k := range keys {
			if admin.ClusterKeySlot(ctx, k).Val() != slot {
				continue
			}
			kind, _, _ := strings.Cut(strings.TrimPrefix(k, prefix), ":")
			kinds = append(kinds, kind)
			if kind != "epoch" {
				assert.Contains(t, k, "{"+tenant+"}", "a key of the tenant's slot carries its tag")
			}
		}
		assert.ElementsMatch(t, []string{"epoch", "l", "f", "r", "r", "b", "b"}, kinds,
			"%s: the slot holds the decision's keys: %v", tenant, keys)
	}
	assert.Len(t, masters, 3, "the tenants are spread over every shard")

	// The per-address bucket, without a partition, is a slot of its own;
	// so is a failure without a partition, with its lockout.
	addr := Admission{Buckets: []Bucket{{Key: "addr:192.0.2.10", Limit: Limit{Burst: 1, Per: time.Hour}}}}
	assert.Equal(t, Admitted, admit(t, a, addr).Outcome)
	assert.Equal(t, RateLimited, admit(t, b, addr).Outcome)
	for range lock.Failures {
		_, err := a.Fail(ctx, "", "someone", lock)
		require.NoError(t, err)
	}
	assert.Equal(t, LockedOut, admit(t, b, Admission{Locks: []string{"someone"}}).Outcome)
}

// TestRedisClusterShardLostRefusesOnlyItsTenants: one master loses its
// keys (FLUSHALL, as a master restarted without persistence). A token
// admitted before the loss at a tenant of that shard is refused after it
// (the slot's epoch is new, BeforeEpoch), not admitted a second time; a
// tenant on another shard keeps its records (Replayed) and its epoch.
func TestRedisClusterShardLostRefusesOnlyItsTenants(t *testing.T) {
	c := redistest.StartCluster(t)
	s := newRedisStore(t, c.URL(), RedisOptions{Prefix: testPrefix(t)})
	admin := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	t.Cleanup(func() { admin.Close() })
	ctx := context.Background()

	// Two tenants on two shards.
	var lost, kept string
	var lostMaster *redis.Client
	byMaster := map[string]string{}
	for i := 0; lost == ""; i++ {
		require.Less(t, i, 100)
		tenant := clusterTenant(i)
		m, err := admin.MasterForKey(ctx, "{"+tenant+"}")
		require.NoError(t, err)
		addr := m.Options().Addr
		if _, ok := byMaster[addr]; ok {
			continue
		}
		byMaster[addr] = tenant
		if len(byMaster) == 2 {
			lost, lostMaster = tenant, m
			for _, other := range byMaster {
				if other != tenant {
					kept = other
				}
			}
		}
	}
	used := map[string]Admission{}
	for _, tenant := range []string{lost, kept} {
		_, err := s.Admit(ctx, Admission{Partition: tenant}) // a store that has been running
		require.NoError(t, err)
	}
	time.Sleep(5 * time.Millisecond)
	for _, tenant := range []string{lost, kept} {
		a := Admission{Partition: tenant, IssuedAt: time.Now(), Once: []Once{{ID: "used", Expires: time.Now().Add(time.Hour)}}}
		require.Equal(t, Admitted, admit(t, s, a).Outcome)
		used[tenant] = a
	}
	keptEpoch, err := s.Epoch(ctx, kept)
	require.NoError(t, err)

	require.NoError(t, lostMaster.FlushAll(ctx).Err())
	time.Sleep(5 * time.Millisecond)

	assert.Equal(t, BeforeEpoch, admit(t, s, used[lost]).Outcome,
		"the lost shard's tenant: the record is gone, the slot's new epoch refuses the token")
	assert.Equal(t, Replayed, admit(t, s, used[kept]).Outcome,
		"the other shard's tenant keeps its records")
	ep, err := s.Epoch(ctx, kept)
	require.NoError(t, err)
	assert.Equal(t, keptEpoch, ep, "and its epoch: its users need not sign in again")
	fresh := Admission{Partition: lost, IssuedAt: time.Now(), Once: []Once{{ID: "fresh", Expires: time.Now().Add(time.Hour)}}}
	assert.Equal(t, Admitted, admit(t, s, fresh).Outcome, "a token issued after the loss is admitted")
}

// clusterTenant is the i-th tenant of the cluster test.
func clusterTenant(i int) string { return fmt.Sprintf("tenant-%02d", i) }

// TestRedisClusterURL: the cluster URL names several nodes; a URL that is
// not one is refused without repeating it.
func TestRedisClusterURL(t *testing.T) {
	opt, err := parseClusterURL("redis+cluster://u:s3cret@127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002?dial_timeout=1s")
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"}, opt.Addrs)
	assert.Equal(t, "s3cret", opt.Password)
	assert.Nil(t, opt.TLSConfig)
	opt, err = parseClusterURL("rediss+cluster://10.0.0.1:7000")
	require.NoError(t, err)
	assert.NotNil(t, opt.TLSConfig)
	for _, bad := range []string{
		"redis+cluster://u:s3cret@",
		"redis+cluster://u:s3cret@h:1,,h:2",
		"redis+cluster://u:s3cret@h:1/3",
		"http+cluster://u:s3cret@h:1",
		"redis+cluster://u:s3cret@h:1?no_such_option=1",
	} {
		_, err := NewRedis(bad, RedisOptions{})
		if assert.Error(t, err, bad) {
			assert.NotContains(t, err.Error(), "s3cret", bad)
		}
	}
	_, err = NewRedis("redis://127.0.0.1:1/0", RedisOptions{Prefix: "{app}:"})
	assert.Error(t, err, "a prefix with a brace would put every key in one slot")
}
