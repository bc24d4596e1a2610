// Package identity is the directory vocabulary the PIN reset packages share:
// the cloud a tenant lives in, how a device is joined, which Windows Hello
// for Business trust type it uses, a tenant's identity and consents, the two
// PIN Reset application IDs, and directory GUIDs.
//
// Each concept has one type here, one spelling and one string form, so that
// a value made by the directory (package idp) reaches the PIN reset service
// (package service) and the eligibility rules (package reset) unchanged,
// with nothing to translate. The package imports nothing of the project;
// reset, reset/service and reset/idp all import it.
package identity
