package protector

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every scheme is one schemeImpl: complete, with a name and a wire byte of
// its own, and sizes that are what its recipient produces.
func TestSchemeImplsAreComplete(t *testing.T) {
	names, wires := map[string]Scheme{}, map[uint8]Scheme{}
	for i, impl := range schemeInfos() {
		s := Scheme(i)
		require.NotNil(t, impl.impl, "scheme %d", i)
		assert.NotZero(t, impl.wire, "%v wire", s)
		assert.NotZero(t, impl.ctSize, "%v ctSize", s)
		if prev, dup := names[impl.name]; dup {
			t.Errorf("%v and %v share the name %q", prev, s, impl.name)
		}
		if prev, dup := wires[impl.wire]; dup {
			t.Errorf("%v and %v share the wire byte %#x", prev, s, impl.wire)
		}
		names[impl.name], wires[impl.wire] = s, s
		back, err := ParseScheme(s.String())
		require.NoError(t, err)
		assert.Equal(t, s, back)
		fromWire, ok := schemeFromWire(s.wire())
		assert.True(t, ok)
		assert.Equal(t, s, fromWire)

		k := testKey(t, s)
		assert.Equal(t, s, k.Public().Scheme())
		env, err := k.Public().Wrap(newKey(t), testBinding, nil)
		require.NoError(t, err)
		assert.Len(t, env.enc, impl.encSize, "%v enc", s)
		assert.Len(t, env.ct, impl.ctSize, "%v ciphertext", s)
		again, err := NewServicePrivateKey(privateOf(k))
		require.NoError(t, err, "%v: the key's own material makes the same key", s)
		assert.True(t, again.Public().Equal(k.Public()))
	}
	assert.False(t, Scheme(schemeCount).valid())
	assert.False(t, Scheme(-1).valid())
	_, ok := Scheme(-1).info()
	assert.False(t, ok)
}

// privateOf is the key material a software service key was made from.
func privateOf(k *ServicePrivateKey) any {
	switch id := k.id.(type) {
	case hpkeIdentity:
		return id.priv
	case rsaIdentity:
		return id.d
	}
	return nil
}
