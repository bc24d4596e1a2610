package reset_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/resettest"
)

// Without a PIN reset service a non-destructive reset cannot succeed: the
// flow says so at the check, before the user types a password or a code,
// and when the kind is left to it, it picks the destructive reset instead.
func TestFlowWithoutServiceRefusesNonDestructiveAtTheCheck(t *testing.T) {
	t.Run("non-destructive asked for", func(t *testing.T) {
		w := resettest.New(t)
		f := w.Flow(t, reset.EntrySettings, newPIN)
		f.Env.Service = nil
		f.Kind = reset.KindNonDestructive
		_, rec, err := run(t, f, w.Container)
		var se *reset.StepError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, reset.StepCheck, se.Step)
		assert.ErrorIs(t, err, reset.ErrNoService)
		assert.Equal(t, []string{"check!"}, rec.steps())
		assert.Empty(t, f.Prompt.(*resettest.Script).Asked(), "the user was asked for something")
	})
	t.Run("kind left to the flow", func(t *testing.T) {
		w := resettest.New(t)
		f := w.Flow(t, reset.EntrySettings, newPIN)
		f.Env.Service = nil
		n, rec, err := run(t, f, w.Container)
		require.NoError(t, err)
		assert.Equal(t, reset.KindDestructive, rec.events[0].Kind)
		assert.NotEqual(t, w.Container.KeyID(), n.KeyID())
	})
}
