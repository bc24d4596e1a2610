package idp

// Limits the tests reach past; callers cannot change them.
const (
	MaxMFAAttempts         = maxMFAAttempts
	DefaultPendingLifetime = defaultPendingLifetime
	HelloNonceLifetime     = helloNonceLifetime
	MaxOutstandingNonces   = maxOutstandingNonces
	WindowsSignInAppID     = windowsSignInAppID
)
