// Package state is the shared state of the PIN reset service: the replay
// records, the rate limits and the failure lockouts that must hold across
// every instance of the service, behind one interface, Store.
//
// A service that runs on one instance uses NewMemory, the embedded default.
// A service that runs on several instances behind a load balancer uses
// NewRedis, on one Redis or a Redis Cluster, so that a token used at one
// instance is refused at another, a user locked out at one instance is
// locked out at all, and a limit counts the requests that reach any of
// them.
//
// # One decision, one step
//
// A recover request is admitted or refused in one call, Store.Admit, which
// takes everything the decision depends on (an Admission): the lockout keys
// to check, the token buckets to draw from and the one-time IDs to record.
// Admit checks all of them and then either changes nothing (a refusal) or
// records every ID and draws from every bucket (admitted), atomically: two
// instances racing on the same token ID see exactly one Admitted. On Redis
// this is one Lua script, one round trip. The order of the checks is fixed:
// the epoch, the lockouts, the one-time IDs, the buckets; a refusal names
// the first that failed. A refused request spends nothing, so a client held
// back by a rate limit may retry with the same token.
//
// Failures (an envelope that does not open, a binding that does not match,
// the wrong device) are counted with Store.Fail, which returns the failure
// count in the sliding window and the lockout it caused, if any. Under a
// Lockout policy modelled on escrow services (Google Cloud Key Vault and
// iCloud Keychain escrow allow 10 guesses), the Failures-th failure in
// Window locks the key for Base, and each further failure in the window
// doubles that, up to Max.
//
// # In the service
//
// The recover path draws from the client address's bucket (an admission
// without a partition) before any signature is checked. Right after
// authentication it makes one Admit in the tenant's partition with the
// user's lockout key, the DPoP proof's jti and the user's and tenant's
// buckets, so that every authenticated request pays and a locked-out user
// is refused whatever the request carries; after every other check, one
// more with the token's jti (and the lockout again), so that a token is
// spent only on a request that is then decrypted. The verdict maps to the
// refusals: BeforeEpoch and Expired to an expired token, Replayed to a
// replayed token or proof, LockedOut and RateLimited to 429 with
// RetryAfter, Full to 503 for that tenant only. An envelope that then
// fails to open, a binding or device mismatch is one Fail for the user. An
// error of any call (ErrStoreUnavailable) is 503, with nothing released
// and nothing counted.
//
// # Failing closed
//
// Every error of a Store means "no decision was made": the caller must
// refuse the request (the service answers 503) and release nothing. Errors
// of the Redis store match ErrStoreUnavailable and are *UnavailableError values;
// each call has a deadline (RedisOptions.Timeout), so a slow Redis is an
// unavailable one. The client reconnects by itself: when Redis returns,
// the next call succeeds, with no restart of the service.
//
// # The epoch
//
// A Redis restarted without persistence has forgotten every token ID it
// recorded, so a token used before the restart could be used again. The
// epoch closes that hole: the store keeps the time it started remembering
// (its epoch), in Redis itself, set atomically by the first Admit after the
// keyspace was emptied. Admit refuses, with BeforeEpoch, any admission whose
// IssuedAt is before the epoch. A token issued after the restart cannot have
// been used before it, so nothing forgotten can be replayed; the cost of a
// restart is that users holding older tokens sign in again, and that rate
// limits and lockouts start afresh (a lockout lost this way is the one real
// loss: run Redis with persistence where that matters, see below).
//
// With persistence (RDB snapshots or an AOF with appendfsync everysec) the
// epoch key survives a restart along with the records, except the writes of
// the last second or snapshot interval: a token admitted in that interval
// could be admitted once more. appendfsync always closes that interval at
// the cost of an fsync per decision; no persistence at all, with the epoch,
// is safe and the cheapest. NewMemory has an epoch too: the time it was
// made, so a restarted single-instance service is safe in the same way.
//
// # Time
//
// The Redis store decides with the Redis server's clock (the TIME command
// inside the script), so instances whose clocks drift still agree; the
// memory store uses its Clock. Both take absolute expiry times for one-time
// IDs (the token's exp plus the service's skew) and remember an ID until
// then and no longer.
//
// # Partitions
//
// Every Admission has a partition (the service uses the tenant), and
// every lockout, failure window, one-time ID and bucket of it lives in that
// partition: Fail and Epoch take the partition too. One tenant's keys
// never meet another's, and on a Redis Cluster the partition is the hash
// tag of every key of the decision, so that the decision is one script on
// the one shard that holds the tenant. The per-address bucket spans
// tenants; it is an admission of its own without a partition, which may
// hold one key only (its own slot).
//
// # Keys
//
// The Redis keys are, under RedisOptions.Prefix (default "hellosim:"):
//
//	r:{partition}:<hash>      a one-time ID: the SHA-256 of the ID (16
//	                          bytes, base64url), value its expiry
//	b:{partition}:<key>       a token bucket: tokens and last refill
//	f:{partition}:<key>       the failure window: a sorted set of times
//	l:{partition}:<key>       a lockout: its end
//	b:{<key>}, f:{<key>},     the same without a partition: the key is its
//	l:{<key>}                 own hash tag
//	epoch                     the epoch, unix milliseconds (one Redis)
//	epoch:{<slot tag>}        a hash slot's epoch (a Redis Cluster)
//
// Partitions and keys hold no brace, so a key's hash tag is exactly its
// partition. On one Redis one epoch covers every key: the server loses all
// of them or none. On a cluster each shard loses its slots alone (a master
// restarted empty, a failover), so each hash slot has an epoch of its own,
// in the slot: a key "epoch:{t}" whose tag t is chosen to hash to the slot
// (the store computes one short tag per slot once). A shard restarted empty
// then refuses the older tokens of its own tenants only. The first
// decision in a slot sets its epoch, so on a new cluster the first request
// of each slot with a token issued before it is refused once (BeforeEpoch:
// sign in again).
//
// A Redis Cluster is named by a "redis+cluster://host:port,host:port"
// URL. The cluster client neither follows a MOVED answer nor retries a
// dropped connection (both share one loop in go-redis, and a retried
// script whose answer was lost would decide twice): while a slot moves, a
// call fails with ErrStoreUnavailable (503) and the next goes to the new
// owner.
package state
