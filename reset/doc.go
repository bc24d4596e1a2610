// Package reset implements the two Windows Hello for Business PIN resets as
// pure functions, and the rules that say who may use them.
//
// # Two resets
//
// A user who forgot the PIN starts "I forgot my PIN" from Settings (after
// signing in another way) or from the lock screen, authenticates, completes
// multi-factor authentication, and chooses a new PIN. What happens next is
// one of two things.
//
// Destructive reset deletes the container's keys and certificates and
// provisions a new login key and PIN: a new NgcKeyId, which the caller's
// directory must learn (Env.Directory). It is the default and needs no
// configuration.
//
// Non-destructive reset keeps the container, its keys and its NgcKeyId and
// changes only the PIN. It needs the PIN reset protector R that the container
// enrolled earlier (EnablePinRecovery policy): the envelope holding R, wrapped
// to the PIN reset service's public key and bound to the tenant, the user and
// the container, goes to the service with the user's access token; the
// service checks the token (MFA, tenant, user), unwraps R and returns it
// sealed to a one-time key of the client. With R the client opens the
// container secret S, seals S under the new PIN, enrols a fresh protector
// under the service's current key, and wipes R and S.
//
// Both are functions from one container value to a new one. They write
// nothing to disk, keep no state, never modify their input, and leave the
// input fully usable when they fail: the caller commits the result with
// store.Store.Save.
//
// Both hold the new PIN to the PIN policy device management sets
// (Env.PINPolicy) when the caller gives it, and the new container records
// that policy. The policy a container file records is authenticated only by
// the container secret, which a destructive reset never has, so a caller that
// leaves Env.PINPolicy nil trusts the file for it. Authentication is the
// caller's too: the resets pass the token on (to the service, and to the
// directory when there is one) but check none themselves.
//
// # Who may reset
//
// The PIN reset documentation's summary table and notes decide which reset
// a device may offer: join type, trust type, Windows edition and version,
// cloud, account type, entry point, network reachability, tenant onboarding
// and client policy. Check holds them as data and code and answers nil or a
// *NotAllowedError whose Reason carries the message a user would see;
// CanReset summarises them as dsregcmd's CanReset value.
//
// # Policy sources
//
// EnablePinRecovery reaches a device through Group Policy ("Use PIN
// Recovery"), the PassportForWork CSP (a custom OMA-URI) or the Intune
// settings catalog; ConfigureWebSignInAllowedUrls through the Policy CSP.
// Package reset/policy reads each form strictly and applies Windows'
// precedence; NewPolicy turns its answer into the Policy that Check reads.
//
// # A flow
//
// Flow walks the documented steps for an entry point — check, choose an
// authentication method (lock screen, Azure AD joined), password, MFA, new
// PIN, reset, register, store — through a Prompter that asks the user and an
// Authenticator that signs in, reporting each step as an Event with the
// message the user would see. Programs and examples use it to replay the
// Settings and lock-screen paths; package resettest builds a whole world
// (TPM, directory, service, container) for tests in one call.
package reset
