package pkcs11

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
)

// oaepDecode is EME-OAEP decoding (RFC 8017, 7.1.2 step 3) with SHA-256
// and MGF1-SHA-256, for tokens whose CKM_RSA_PKCS_OAEP takes only SHA-1
// and no label (SoftHSM2 2.6): the token does the private-key operation
// (CKM_RSA_X_509) and this decodes its output. em is the integer the
// token returned, k the modulus size in bytes. It runs in time independent
// of where the encoding is wrong, and every failure is rsa.ErrDecryption,
// so it offers no padding oracle (Manger, CRYPTO 2001). em is wiped.
func oaepDecode(em []byte, k int, label []byte) ([]byte, error) {
	defer clear(em)
	const hLen = sha256.Size
	if k < 2*hLen+2 || len(em) > k {
		return nil, rsa.ErrDecryption
	}
	buf := make([]byte, k)
	defer clear(buf)
	copy(buf[k-len(em):], em) // the token may drop leading zeros

	lHash := sha256.Sum256(label)
	firstByteIsZero := subtle.ConstantTimeByteEq(buf[0], 0)
	seed, db := buf[1:hLen+1], buf[hLen+1:]
	mgf1XOR(seed, db)
	mgf1XOR(db, seed)
	lHashGood := subtle.ConstantTimeCompare(lHash[:], db[:hLen])

	// db = lHash' || PS (zeros) || 0x01 || M: find the 0x01 without
	// branching on secret data.
	rest := db[hLen:]
	lookingForIndex, index, invalid := 1, 0, 0
	for i := range rest {
		equals0 := subtle.ConstantTimeByteEq(rest[i], 0)
		equals1 := subtle.ConstantTimeByteEq(rest[i], 1)
		index = subtle.ConstantTimeSelect(lookingForIndex&equals1, i, index)
		lookingForIndex = subtle.ConstantTimeSelect(equals1, 0, lookingForIndex)
		invalid = subtle.ConstantTimeSelect(lookingForIndex&^equals0, 1, invalid)
	}
	if firstByteIsZero&lHashGood&^invalid&^lookingForIndex != 1 {
		return nil, rsa.ErrDecryption
	}
	return append([]byte(nil), rest[index+1:]...), nil
}

// mgf1XOR XORs out with MGF1-SHA-256(seed) (RFC 8017, B.2.1).
func mgf1XOR(out, seed []byte) {
	var counter [4]byte
	var digest [sha256.Size]byte
	defer clear(digest[:])
	for done := 0; done < len(out); {
		h := sha256.New()
		h.Write(seed)
		h.Write(counter[:])
		h.Sum(digest[:0])
		for i := 0; i < len(digest) && done < len(out); i++ {
			out[done] ^= digest[i]
			done++
		}
		binary.BigEndian.PutUint32(counter[:], binary.BigEndian.Uint32(counter[:])+1)
	}
}
