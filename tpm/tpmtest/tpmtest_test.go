package tpmtest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// errorRecorder is a testing.TB that records Errorf instead of failing.
type errorRecorder struct {
	testing.TB
	errs []string
}

func (e *errorRecorder) Errorf(format string, args ...any) {
	e.errs = append(e.errs, fmt.Sprintf(format, args...))
}

func (e *errorRecorder) Helper() {}

func TestOpenGivesAPreparedTPM(t *testing.T) {
	tp := tpmtest.Open(t)
	assert.Zero(t, tp.Stats().Total(), "statistics start at zero")
	st, err := tp.LockoutStatus(context.Background())
	require.NoError(t, err)
	assert.Zero(t, st.Failures)
	assert.EqualValues(t, 32, st.MaxTries)
}

func TestRecorderFindsBytes(t *testing.T) {
	tp, rec := tpmtest.OpenRecorded(t)
	_, err := tp.LockoutStatus(context.Background())
	require.NoError(t, err)
	ex := rec.Exchanges()
	require.NotEmpty(t, ex)
	last := ex[len(ex)-1]

	// The command code of TPM2_GetCapability is in the last command, and a
	// search finds it.
	where, err := rec.Find(last.Command[6:10])
	require.NoError(t, err)
	assert.NotEmpty(t, where)
	_, err = rec.Find([]byte{1, 2, 3})
	assert.Error(t, err, "too short to search for")

	e := &errorRecorder{TB: t}
	rec.AssertAbsent(e, last.Response[len(last.Response)-8:], []byte("never sent to any TPM"))
	assert.Len(t, e.errs, 1, "only the recorded bytes are reported")

	rec.Reset()
	assert.Empty(t, rec.Exchanges())
}
