//go:build cgo

// Package simnv reaches into the platform layer of the embedded TCG reference
// simulator (go-tpm-tools/simulator) to save and restore its NV memory.
//
// go-tpm-tools offers no API for it: its simulator keeps NV in the global
// unsigned char s_NV[NV_MEMORY_SIZE] of the reference code's platform layer
// (Samples/Google/NVMem.c), and every NV write of the TPM lands there at
// once. The symbols are global C symbols of the same binary, so this
// package's cgo declares them extern:
//
//	unsigned char s_NV[16384]     the NV image
//	void _plat__Reset(bool)       _plat__Reset(false): power cycle (_TPM_Init)
//	uint64_t s_tpmTime            the platform timer, in milliseconds
//
// A saved image is brought back after TPM2_Shutdown: Load copies it in,
// PowerCycle runs _plat__Reset(false) (which re-reads NV and does not
// manufacture, since the image says the TPM is manufactured), and the next
// TPM2_Startup sees the saved TPM. The size and the symbols are pinned by
// this package's tests, which read the test binary's symbol table: a new
// go-tpm-tools that renames or resizes them fails the build or the tests,
// never silently.
//
// Every function here must be called while the caller holds the simulator
// (simulator.Get), with no command running.
package simnv

/*
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

extern unsigned char s_NV[];
extern uint64_t s_tpmTime;
void _plat__Reset(bool forceManufacture);

static void simnv_read(void *dst, size_t n) { memcpy(dst, s_NV, n); }
static void simnv_load(const void *src, size_t n) { memcpy(s_NV, src, n); }
static void simnv_power_cycle(uint64_t ms) {
	_plat__Reset(false);
	// _plat__Reset restarted the platform timer at 0; start it at ms
	// instead, so the TPM counts that much time at the next TPM2_Startup.
	s_tpmTime = ms;
}
*/
import "C"

import (
	"time"
	"unsafe"

	// The simulator's C code defines the symbols declared above.
	_ "github.com/google/go-tpm-tools/simulator"
)

// Size is NV_MEMORY_SIZE of the reference code as go-tpm-tools v0.4.11
// builds it (TpmProfile.h), the length of s_NV.
const Size = 16384

// Read copies the NV image into dst, which must be Size bytes long.
func Read(dst *[Size]byte) { C.simnv_read(unsafe.Pointer(&dst[0]), Size) }

// Load replaces the NV image with src. The TPM must be shut down
// (TPM2_Shutdown) and is not usable until PowerCycle and TPM2_Startup.
func Load(src *[Size]byte) { C.simnv_load(unsafe.Pointer(&src[0]), Size) }

// PowerCycle powers the TPM off and on (_TPM_Init) without manufacturing it,
// so that it reads its NV anew, and makes it count off as time spent
// powered: at TPM2_Startup, dictionary-attack self-healing sees that much
// time gone by. The next command must be TPM2_Startup.
func PowerCycle(off time.Duration) {
	C.simnv_power_cycle(C.uint64_t(max(off, 0).Milliseconds()))
}
