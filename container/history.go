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
func (o *options) historyMAC(s []byte, containerID string, pin nfcPIN) []byte {
	k := o.deriveKey(s, containerID, infoHistoryMAC)
	defer clear(k)
	m := hmac.New(sha256.New, k)
	m.Write(pin)
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	defer clear(sum[:])
	// A copy of exactly historyEntryLen bytes, so that the caller's clear
	// wipes all of it.
	mac := append(make([]byte, 0, historyEntryLen), sum[:historyEntryLen]...)
	o.see(secretHistoryMAC, mac)
	return mac
}

func (o *options) historyAEAD(s []byte, containerID string) cipher.AEAD {
	k := o.deriveKey(s, containerID, infoHistoryEnc)
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
func (o *options) openHistory(s []byte, containerID string, ct []byte) ([][]byte, error) {
	if len(ct) == 0 {
		return nil, nil
	}
	if len(ct) < historyOverhead {
		return nil, &FormatError{Field: "history", Reason: "too short"}
	}
	pt, err := o.historyAEAD(s, containerID).Open(nil, ct[:historyNonceLen], ct[historyNonceLen:], historyAAD(containerID))
	if err != nil {
		return nil, &FormatError{Field: "history", Reason: "does not decrypt under this container's secret"}
	}
	o.see(secretHistory, pt)
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

// sealHistory encrypts up to max entries (most recent first) with a nonce
// from o.rand; nil when max is 0.
func (o *options) sealHistory(s []byte, containerID string, entries [][]byte, max int) ([]byte, error) {
	if max == 0 || len(entries) == 0 {
		return nil, nil
	}
	if len(entries) > max {
		entries = entries[:max]
	}
	pt := make([]byte, 0, len(entries)*historyEntryLen)
	defer clear(pt[:cap(pt)])
	o.see(secretHistory, pt)
	for _, e := range entries {
		pt = append(pt, e...)
	}
	nonce := make([]byte, historyNonceLen, historyOverhead+len(pt))
	if _, err := io.ReadFull(o.rand, nonce); err != nil {
		return nil, fmt.Errorf("read random: %w", err)
	}
	return o.historyAEAD(s, containerID).Seal(nonce, nonce, pt, historyAAD(containerID)), nil
}

func inHistory(entries [][]byte, mac []byte) bool {
	for _, e := range entries {
		if hmac.Equal(e, mac) {
			return true
		}
	}
	return false
}
