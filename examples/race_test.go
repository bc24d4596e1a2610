//go:build race

package examples_test

// raceEnabled: the example programs are built with -race too.
const raceEnabled = true
