package state

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The checksum and the slots the Redis Cluster specification and
// `CLUSTER KEYSLOT` give.
func TestKeySlot(t *testing.T) {
	assert.Equal(t, uint16(0x31C3), crc16("123456789"), "the specification's check value")
	for key, slot := range map[string]int{
		"foo":                  12182,
		"bar":                  5061,
		"{user1000}.following": keySlot("user1000"),
		"foo{}{bar}":           keySlot("foo{}{bar}"),
		"foo{{bar}}zap":        keySlot("{bar"),
		"foo{bar}{zap}":        keySlot("bar"),
	} {
		assert.Equal(t, slot, keySlot(key), key)
	}
	assert.NotEqual(t, keySlot("foo{}{bar}"), keySlot("bar"), "an empty tag hashes the whole key")
}

func TestSlotTagsCoverEverySlot(t *testing.T) {
	tags := slotTags()
	assert.Len(t, tags, slots)
	for s, tag := range tags {
		if !assert.NotEmpty(t, tag, "slot %d", s) {
			return
		}
		assert.Equal(t, s, keySlot("epoch:{"+tag+"}"), tag)
	}
}
