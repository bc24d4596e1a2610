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

// historyMAC is the history entry of pin; the caller wipes it.
func historyMAC(s []byte, containerID, pin string, watch secretObserver) []byte {
	k := deriveKey(s, containerID, infoHistoryMAC, watch)
	defer clear(k)
	p := nfcBytes(pin, watch)
	defer clear(p)
	m := hmac.New(sha256.New, k)
	m.Write(p)
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	defer clear(sum[:])
	// A copy of exactly historyEntryLen bytes, so that the caller's clear
	// wipes all of it.
	mac := append(make([]byte, 0, historyEntryLen), sum[:historyEntryLen]...)
	watch.see(secretHistoryMAC, mac)
	return mac
}

func historyAEAD(s []byte, containerID string, watch secretObserver) cipher.AEAD {
	k := deriveKey(s, containerID, infoHistoryEnc, watch)
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

// openHistory decrypts the history entries, most recent first. They share
// one buffer; the caller wipes each entry.
func openHistory(s []byte, containerID string, ct []byte, watch secretObserver) ([][]byte, error) {
	if len(ct) == 0 {
		return nil, nil
	}
	if len(ct) < historyOverhead {
		return nil, &FormatError{Field: "history", Reason: "too short"}
	}
	pt, err := historyAEAD(s, containerID, watch).Open(nil, ct[:historyNonceLen], ct[historyNonceLen:], historyAAD(containerID))
	if err != nil {
		return nil, &FormatError{Field: "history", Reason: "does not decrypt under this container's secret"}
	}
	watch.see(secretHistory, pt)
	// Bytes after the last whole entry belong to no entry the caller
	// wipes: wipe them now.
	clear(pt[len(pt)-len(pt)%historyEntryLen : cap(pt)])
	var out [][]byte
	for len(pt) >= historyEntryLen {
		out = append(out, pt[:historyEntryLen:historyEntryLen])
		pt = pt[historyEntryLen:]
	}
	return out, nil
}

// sealHistory encrypts up to max entries (most recent first); nil when max is 0.
func sealHistory(s []byte, containerID string, entries [][]byte, max int, rand io.Reader, watch secretObserver) ([]byte, error) {
	if max == 0 || len(entries) == 0 {
		return nil, nil
	}
	if len(entries) > max {
		entries = entries[:max]
	}
	pt := make([]byte, 0, len(entries)*historyEntryLen)
	defer clear(pt[:cap(pt)])
	watch.see(secretHistory, pt)
	for _, e := range entries {
		pt = append(pt, e...)
	}
	nonce := make([]byte, historyNonceLen, historyOverhead+len(pt))
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("read random: %w", err)
	}
	return historyAEAD(s, containerID, watch).Seal(nonce, nonce, pt, historyAAD(containerID)), nil
}

func inHistory(entries [][]byte, mac []byte) bool {
	for _, e := range entries {
		if hmac.Equal(e, mac) {
			return true
		}
	}
	return false
}
