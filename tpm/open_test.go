package tpm_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/hellosim/hellosim/tpm"
)

func TestOpenBadSpecs(t *testing.T) {
	for _, spec := range []string{
		"sim:seed=",
		"sim:seed=abc",
		"sim:fast",
		"tcp://",
		"tcp://127.0.0.1",
		"tcp://127.0.0.1:0",
		"tcp://127.0.0.1:notaport",
		"tcp://127.0.0.1:1", // nothing listens there
		"/nonexistent/tpm-device",
	} {
		tp, err := tpm.Open(spec)
		assert.Error(t, err, spec)
		assert.Nil(t, tp, spec)
	}
}

func TestOpenDeviceMissing(t *testing.T) {
	tp, err := tpm.OpenDevice("/nonexistent/tpmrm9")
	assert.Error(t, err)
	assert.Nil(t, tp)
	assert.Contains(t, err.Error(), "/nonexistent/tpmrm9")
}
