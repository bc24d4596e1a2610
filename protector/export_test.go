package protector

// keyArray exposes the array that holds a Key's secret, so a test can check
// that Destroy zeroes the memory itself, not a copy.
func keyArray(k *Key) *[KeySize]byte { return &k.s.b }

// returnKeySeed does the same for a ReturnKey's private key.
func returnKeySeed(k *ReturnKey) *[32]byte { return &k.s.seed }
