package container

// Every buffer that holds the container secret S, a value derived from it or
// from the PIN, or the PIN itself is wiped as soon as the operation that made
// it is done with it (a Session holds S until Close). Go's garbage collector
// may move or copy memory it manages, so wiping is a best effort: it shortens
// the time a secret sits in the heap and keeps it out of core dumps taken
// after the operation, and the tests in this package prove that every buffer
// the code makes is zero when the operation returns.

// Kinds of secret buffer a secretObserver is shown.
const (
	secretS          = "S"          // the container secret
	secretPIN        = "pin"        // the PIN's bytes (as typed, and NFC)
	secretPINAuth    = "pinAuth"    // HMAC-SHA256(salt, NFC(PIN)), the PIN protector's authValue
	secretKeyAuth    = "keyAuth"    // a key's authValue, derived from S
	secretDerivedKey = "derivedKey" // a tag or PIN history key, derived from S
	secretHistoryMAC = "historyMAC" // one PIN history entry, a MAC of the PIN
	secretHistory    = "history"    // the decrypted or to-be-encrypted PIN history
)

// secretObserver is shown each secret buffer where it is made. Only the
// tests of this package set one (withSecretObserver), to check afterwards
// that every buffer was wiped; it is nil otherwise.
type secretObserver func(kind string, buf []byte)

// see shows buf, up to its capacity, to the observer, if there is one.
func (o *options) see(kind string, buf []byte) {
	if o != nil && o.watch != nil && buf != nil {
		o.watch(kind, buf[:cap(buf)])
	}
}

// withSecretObserver makes an operation show f every buffer it makes that
// holds a secret. It is unexported on purpose: it exists so that the tests of
// this package can prove the buffers are zero once the operation returns (for
// a Session, once it is closed), and no caller outside should ever be handed
// the container secret.
func withSecretObserver(f func(kind string, buf []byte)) Option {
	return func(o *options) { o.watch = f }
}
