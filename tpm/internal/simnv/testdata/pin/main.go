//go:build cgo

// Command pin links the simulator and simnv so that the tests can read the
// symbol table of an unstripped binary; it prints the go-tpm-tools version
// it was built with.
package main

import (
	"fmt"
	"runtime/debug"

	"github.com/hellosim/hellosim/tpm/internal/simnv"
)

func main() {
	var img [simnv.Size]byte
	simnv.Read(&img)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/google/go-tpm-tools" {
				if m.Replace != nil {
					m = m.Replace
				}
				fmt.Println(m.Version)
			}
		}
	}
}
