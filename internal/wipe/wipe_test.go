package wipe

import "testing"

func TestBytesZeroesEveryBuffer(t *testing.T) {
	a := []byte{1, 2, 3}
	b := []byte{4, 5}
	Bytes(a, nil, b)
	for _, v := range append(a, b...) {
		if v != 0 {
			t.Fatalf("byte not wiped: %v %v", a, b)
		}
	}
}
