package policy

import (
	"errors"
	"os"
	"testing"
)

// Anything after the JSON object is refused, not only another JSON value:
// a stray "}" or bytes that are no JSON token at all.
func TestParseIntuneSettingRefusesAnyTrailingData(t *testing.T) {
	data, err := os.ReadFile("testdata/intune-enablepinrecovery-true.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseIntuneSetting(data); err != nil {
		t.Fatalf("the sample: %v", err)
	}
	for _, tail := range []string{"}", "]", "x", "{", ",", "\x00", "\"", "// comment", "{}", "1"} {
		_, err := ParseIntuneSetting(append(append([]byte(nil), data...), tail...))
		if !errors.Is(err, ErrMalformedSetting) {
			t.Errorf("trailing %q: got %v, want ErrMalformedSetting", tail, err)
		}
	}
}
