package container

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPINPolicyZeroValueIsWindowsDefault(t *testing.T) {
	got := PINPolicy{}.withDefaults()
	assert.Equal(t, PINPolicy{
		MinimumLength: 4, MaximumLength: 127,
		Digits: CharRequire, LowercaseLetters: CharDisallow, UppercaseLetters: CharDisallow, SpecialCharacters: CharDisallow,
	}, got)
}

func TestPINPolicyCheck(t *testing.T) {
	all := PINPolicy{Digits: CharAllow, LowercaseLetters: CharAllow, UppercaseLetters: CharAllow, SpecialCharacters: CharAllow}
	cases := []struct {
		name   string
		policy PINPolicy
		pin    string
		rule   Rule // 0: accepted
	}{
		{"default accepts 4 digits", PINPolicy{}, "1358", 0},
		{"default accepts 127 digits", PINPolicy{}, strings.Repeat("13", 63) + "5", 0},
		{"default refuses 3 digits", PINPolicy{}, "135", RuleMinimumLength},
		{"default refuses 128 digits", PINPolicy{}, strings.Repeat("13", 64), RuleMaximumLength},
		{"default refuses empty", PINPolicy{}, "", RuleMinimumLength},
		{"minimum 6 refuses 5", PINPolicy{MinimumLength: 6}, "13572", RuleMinimumLength},
		{"minimum 6 accepts 6", PINPolicy{MinimumLength: 6}, "135724", 0},
		{"maximum 6 refuses 7", PINPolicy{MaximumLength: 6}, "1357246", RuleMaximumLength},
		{"maximum 6 accepts 6", PINPolicy{MaximumLength: 6}, "135724", 0},
		{"digits required", PINPolicy{LowercaseLetters: CharAllow}, "abcd", RuleDigits},
		{"digits disallowed", PINPolicy{Digits: CharDisallow, LowercaseLetters: CharAllow}, "abc1", RuleDigits},
		{"digits allowed, letters only", PINPolicy{Digits: CharAllow, LowercaseLetters: CharAllow}, "abqz", 0},
		{"lowercase disallowed by default", PINPolicy{}, "135a", RuleLowercaseLetters},
		{"lowercase required", PINPolicy{LowercaseLetters: CharRequire}, "13579", RuleLowercaseLetters},
		{"lowercase required met", PINPolicy{LowercaseLetters: CharRequire}, "1357a", 0},
		{"uppercase disallowed by default", PINPolicy{}, "135A", RuleUppercaseLetters},
		{"uppercase required", PINPolicy{UppercaseLetters: CharRequire}, "13579", RuleUppercaseLetters},
		{"uppercase required met", PINPolicy{UppercaseLetters: CharRequire}, "1357Q", 0},
		{"special disallowed by default", PINPolicy{}, "135!", RuleSpecialCharacters},
		{"space is special", PINPolicy{}, "13 57", RuleSpecialCharacters},
		{"special required", PINPolicy{SpecialCharacters: CharRequire}, "13579", RuleSpecialCharacters},
		{"special required met", PINPolicy{SpecialCharacters: CharRequire}, "135#7", 0},
		{"control character refused", all, "ab\x01cd", RuleCharacters},
		{"invalid UTF-8 refused", all, "ab\xffcd", RuleCharacters},
		{"unicode letters counted by case", PINPolicy{UppercaseLetters: CharAllow, LowercaseLetters: CharAllow}, "1Éé9", 0},
		{"length counts characters not bytes", PINPolicy{MaximumLength: 4, LowercaseLetters: CharAllow}, "1éé9", 0},
		{"1111 refused", PINPolicy{}, "1111", RuleConstantDelta},
		{"1234 refused", PINPolicy{}, "1234", RuleConstantDelta},
		{"9753 refused", PINPolicy{}, "9753", RuleConstantDelta},
		{"wrapping delta 8901 refused", PINPolicy{}, "8901", RuleConstantDelta},
		{"long constant delta refused", PINPolicy{}, "02468024680", RuleConstantDelta},
		{"1235 accepted", PINPolicy{}, "1235", 0},
		{"constant delta with a letter accepted", PINPolicy{LowercaseLetters: CharAllow}, "1234a", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Check(tc.pin)
			if tc.rule == 0 {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrPINPolicy)
			var pe *PolicyError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.rule, pe.Rule, "error: %v", err)
			assert.Contains(t, err.Error(), tc.rule.String())
			if len(tc.pin) >= 4 {
				assert.NotContains(t, err.Error(), tc.pin, "the error must not show the PIN")
			}
		})
	}
}

// There are exactly 100 constant-delta PINs at every length (WHfB FAQ).
func TestConstantDeltaCountsHundredPerLength(t *testing.T) {
	for _, length := range []int{4, 5, 6} {
		n := 0
		limit := 1
		for range length {
			limit *= 10
		}
		for v := range limit {
			if _, ok := constantDelta(fmt.Appendf(nil, "%0*d", length, v)); ok {
				n++
			}
		}
		assert.Equal(t, 100, n, "length %d", length)
	}
}

func TestPINPolicyRanges(t *testing.T) {
	valid := func(p PINPolicy) error { return p.Validate() }
	for n := 4; n <= 127; n++ {
		assert.NoError(t, valid(PINPolicy{MinimumLength: n}), "minimum %d", n)
		assert.NoError(t, valid(PINPolicy{MinimumLength: 4, MaximumLength: n}), "maximum %d", n)
	}
	for n := 0; n <= 50; n++ {
		assert.NoError(t, valid(PINPolicy{History: n}), "history %d", n)
	}
	for n := 0; n <= 730; n++ {
		assert.NoError(t, valid(PINPolicy{Expiration: n}), "expiration %d", n)
	}
	invalid := map[string]PINPolicy{
		"minimum 3":             {MinimumLength: 3},
		"minimum 128":           {MinimumLength: 128},
		"minimum negative":      {MinimumLength: -1},
		"maximum 3":             {MaximumLength: 3},
		"maximum 128":           {MaximumLength: 128},
		"minimum above maximum": {MinimumLength: 10, MaximumLength: 8},
		"history 51":            {History: 51},
		"history negative":      {History: -1},
		"expiration 731":        {Expiration: 731},
		"expiration negative":   {Expiration: -1},
		"all disallowed":        {Digits: CharDisallow},
		"unknown char rule":     {Digits: CharRule(9)},
	}
	for name, p := range invalid {
		err := valid(p)
		assert.ErrorIs(t, err, ErrInvalidConfig, name)
		assert.Error(t, p.Check("1358"), name)
	}
}

func TestCharRuleFromCSP(t *testing.T) {
	for v, want := range map[int]CharRule{0: CharAllow, 1: CharRequire, 2: CharDisallow} {
		got, err := CharRuleFromCSP(v)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := CharRuleFromCSP(3)
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

// The same PIN typed precomposed or decomposed is the same PIN.
func TestPINNormalisedNFC(t *testing.T) {
	salt := []byte("0123456789abcdef0123456789abcdef")
	composed := "12\u00e935"    // é precomposed
	decomposed := "12e\u030135" // e + combining acute
	require.NotEqual(t, composed, decomposed)
	assert.Equal(t, (&options{}).pinAuth(salt, enter(composed)), (&options{}).pinAuth(salt, enter(decomposed)))
	assert.NotEqual(t, (&options{}).pinAuth(salt, enter(composed)), (&options{}).pinAuth(salt, enter("12e35")))
	p := PINPolicy{LowercaseLetters: CharAllow, MaximumLength: 5}
	assert.NoError(t, p.Check(decomposed), "length is counted after NFC")
}

func TestPolicyErrorsMatchOnlyTheirSentinel(t *testing.T) {
	err := error(&PolicyError{Rule: RuleHistory})
	assert.True(t, errors.Is(err, ErrPINPolicy))
	assert.False(t, errors.Is(err, ErrWrongPIN))
	assert.False(t, errors.Is(&PINError{Remaining: 3}, ErrPINPolicy))
}

// A repeated digit and a rising run break the same rule but say different
// things: "111111" does not rise or fall.
func TestPINPolicyRepeatedDigitsHaveTheirOwnMessage(t *testing.T) {
	for pin, want := range map[string]string{
		"111111": "one digit repeated is too simple",
		"0000":   "one digit repeated is too simple",
		"123456": "digits that rise or fall by a constant step are too simple",
		"97531":  "digits that rise or fall by a constant step are too simple",
	} {
		err := PINPolicy{}.Check(pin)
		var pe *PolicyError
		require.ErrorAs(t, err, &pe, pin)
		assert.Equal(t, RuleConstantDelta, pe.Rule, pin)
		assert.Equal(t, want, pe.Detail, pin)
	}
}
