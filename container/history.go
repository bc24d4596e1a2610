package container

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"io"
)

// PIN history (PassportForWork PINComplexity/History: the last N PINs cannot
// be reused; not preserved through a PIN reset). Each entry is an HMAC of the
// NFC PIN under a key derived from the container secret S, and the list is
// encrypted under another S-derived key, so the file holds no PIN hashes an
// attacker could test guesses against without the TPM.
const (
	historyNonceLen = 12
	historyOverhead = historyNonceLen + 16 // nonce + GCM tag
	historyMaxLen   = historyOverhead + MaxPINHistory*historyEntryLen
)

func historyMAC(s []byte, containerID, pin string) []byte {
	k := deriveKey(s, containerID, infoHistoryMAC)
	defer clear(k)
	p := nfcBytes(pin)
	defer clear(p)
	m := hmac.New(sha256.New, k)
	m.Write(p)
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	defer clear(sum[:])
	// A copy of exactly historyEntryLen bytes, so that the caller's clear
	// wipes all of it.
	return append(make([]byte, 0, historyEntryLen), sum[:historyEntryLen]...)
}

func historyAEAD(s []byte, containerID string) cipher.AEAD {
	k := deriveKey(s, containerID, infoHistoryEnc)
	defer clear(k)
	block, err := aes.NewCipher(k)
	if err != nil {
		panic("container: aes: " + err.Error()) // 32-byte key: cannot fail
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("container: gcm: " + err.Error())
	}
	return aead
}

func historyAAD(containerID string) []byte { return []byte("hellosim pin history " + containerID) }

// openHistory decrypts the history entries, most recent first.
func openHistory(s []byte, containerID string, ct []byte) ([][]byte, error) {
	if len(ct) == 0 {
		return nil, nil
	}
	if len(ct) < historyOverhead {
		return nil, &FormatError{Field: "history", Reason: "too short"}
	}
	pt, err := historyAEAD(s, containerID).Open(nil, ct[:historyNonceLen], ct[historyNonceLen:], historyAAD(containerID))
	if err != nil {
		return nil, &FormatError{Field: "history", Reason: "does not decrypt under this container's secret"}
	}
	var out [][]byte
	for len(pt) >= historyEntryLen {
		out = append(out, pt[:historyEntryLen:historyEntryLen])
		pt = pt[historyEntryLen:]
	}
	return out, nil
}

// sealHistory encrypts up to max entries (most recent first); nil when max is 0.
func sealHistory(s []byte, containerID string, entries [][]byte, max int, rand io.Reader) ([]byte, error) {
	if max == 0 || len(entries) == 0 {
		return nil, nil
	}
	if len(entries) > max {
		entries = entries[:max]
	}
	pt := make([]byte, 0, len(entries)*historyEntryLen)
	defer clear(pt[:cap(pt)])
	for _, e := range entries {
		pt = append(pt, e...)
	}
	nonce := make([]byte, historyNonceLen, historyOverhead+len(pt))
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("read random: %w", err)
	}
	return historyAEAD(s, containerID).Seal(nonce, nonce, pt, historyAAD(containerID)), nil
}

func inHistory(entries [][]byte, mac []byte) bool {
	for _, e := range entries {
		if hmac.Equal(e, mac) {
			return true
		}
	}
	return false
}
