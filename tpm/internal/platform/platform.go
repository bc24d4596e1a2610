// Package platform reaches what a shipped program must not: NV indices a
// TPM manufacturer writes with platform authorization, which only a
// simulator or swtpm leaves open. Package tpm fills the two functions in;
// tpm/tpmtest (Manufacture) calls them, and nothing outside this module
// can.
package platform

import "context"

// WriteEndorsementNV defines the NV index with platform authorization and
// writes data into it, as a TPM manufacturer provisions an EK certificate
// or its chain; an index already defined is replaced. t is a *tpm.TPM.
var WriteEndorsementNV func(ctx context.Context, t any, index uint32, data []byte) error

// DeleteEndorsementNV removes an NV index defined with platform
// authorization; an index that is not defined is not an error. t is a
// *tpm.TPM.
var DeleteEndorsementNV func(ctx context.Context, t any, index uint32) error
