package state

import (
	"strconv"
	"strings"
)

// slots is the number of Redis Cluster hash slots (Redis Cluster
// specification, "Key distribution model").
const slots = 16384

// keySlot is the hash slot of a Redis key: CRC16 (XMODEM) of its hash tag
// (the text between the first '{' and the first '}' after it, when that is
// not empty) or of the whole key, modulo 16384, as the Redis Cluster
// specification defines it.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key)) % slots
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), the
// checksum of the Redis Cluster key distribution.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// slotTags returns, for every hash slot, a short hash tag that maps to it
// (the first base-36 number that does): a key of a chosen slot, such as a
// slot's epoch, is then "{" + tag + "}…". About 170 000 checksums of one
// to four bytes, once per cluster store.
func slotTags() []string {
	tags := make([]string, slots)
	for n, left := uint64(0), slots; left > 0; n++ {
		tag := strconv.FormatUint(n, 36)
		if s := crc16(tag) % slots; tags[s] == "" {
			tags[s] = tag
			left--
		}
	}
	return tags
}
