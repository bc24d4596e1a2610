// Package archtest holds the tests that keep the module's shape true: the
// import rules of docs/ARCHITECTURE.md and one declaration per exported
// error name. It has no code of its own.
package archtest
