package examplecmd

import (
	"flag"
	"fmt"
	"os"
)

// Parse reads the process's command line into the flags defined on
// flag.CommandLine, calling the program name in messages (not its build
// path). -h prints about, the usage lines and the flags, and exits.
func Parse(name, about, usage string) {
	flag.CommandLine.Init(name, flag.ExitOnError)
	flag.CommandLine.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), about+"\n\nusage: "+usage+"\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
}

// ParseFlagsOnly is Parse for a program that takes flags and no word: a
// word prints the usage and exits with status 2.
func ParseFlagsOnly(name, about, usage string) {
	Parse(name, about, usage)
	if flag.NArg() != 0 {
		flag.CommandLine.Usage()
		os.Exit(2)
	}
}
