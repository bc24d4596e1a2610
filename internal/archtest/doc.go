// Package archtest holds the tests that keep the module's shape true: the
// layers and import rules of docs/ARCHITECTURE.md (its picture and its
// table) and one declaration per exported error name. It has no code of its
// own.
package archtest
