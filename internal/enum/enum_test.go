package enum

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var colours = []string{"red", "green"}

func TestName(t *testing.T) {
	assert.Equal(t, "green", Name(colours, 1, "Colour"))
	assert.Equal(t, "Colour(2)", Name(colours, 2, "Colour"))
	assert.Equal(t, "Colour(-1)", Name(colours, -1, "Colour"))
	assert.Equal(t, "Colour(0)", Name([]string{1: "red"}, 0, "Colour"), "a value the table skips")
}

func TestMarshalUnmarshal(t *testing.T) {
	b, err := Marshal("paint", colours, 0, "colour")
	require.NoError(t, err)
	assert.Equal(t, "red", string(b))
	_, err = Marshal("paint", colours, 7, "colour")
	assert.EqualError(t, err, "paint: invalid colour 7")

	v := -1
	require.NoError(t, Unmarshal("paint", colours, &v, []byte("GREEN"), "colour"))
	assert.Equal(t, 1, v)
	err = Unmarshal("paint", colours, &v, []byte("blue"), "colour")
	assert.EqualError(t, err, `paint: unknown colour "blue" (want one of red, green)`)
	assert.Equal(t, 1, v, "an unknown name leaves the value")
}
