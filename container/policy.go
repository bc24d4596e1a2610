package container

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/hellosim/hellosim/internal/enum"
)

// PassportForWork CSP PINComplexity ranges and defaults
// (./Vendor/MSFT/PassportForWork/{TenantId}/Policies/PINComplexity/...).
const (
	MinPINLength        = 4   // lowest MinimumPINLength / MaximumPINLength
	MaxPINLength        = 127 // highest MinimumPINLength / MaximumPINLength
	DefaultMinPINLength = 4
	DefaultMaxPINLength = 127
	MaxPINHistory       = 50  // History: 0..50 previous PINs
	MaxPINExpiration    = 730 // Expiration: 0..730 days, 0 = never
)

// CharRule is what a PIN policy says about one class of characters. The
// PassportForWork CSP encodes it as 0 allow, 1 require, 2 disallow; here the
// zero value means "the CSP default for this class" so that a zero PINPolicy is
// the Windows default policy. CharRuleFromCSP converts CSP values.
type CharRule uint8

const (
	CharDefault  CharRule = iota // the CSP default: Digits require, others disallow
	CharAllow                    // CSP 0
	CharRequire                  // CSP 1
	CharDisallow                 // CSP 2
)

// CharRuleFromCSP converts a PassportForWork CSP value (0 allow, 1 require,
// 2 disallow) to a CharRule.
func CharRuleFromCSP(v int) (CharRule, error) {
	switch v {
	case 0:
		return CharAllow, nil
	case 1:
		return CharRequire, nil
	case 2:
		return CharDisallow, nil
	}
	return 0, fmt.Errorf("%w: PINComplexity value %d is not 0 (allow), 1 (require) or 2 (disallow)", ErrInvalidConfig, v)
}

// String is allow, require, disallow or default.
func (r CharRule) String() string { return enum.Name(charRuleNames, int(r), "CharRule") }

var charRuleNames = []string{CharDefault: "default", CharAllow: "allow", CharRequire: "require", CharDisallow: "disallow"}

// PINPolicy is the PassportForWork PINComplexity policy. The zero value is the
// Windows default: 4 to 127 characters, digits required, lowercase and
// uppercase letters and special characters disallowed, no history, no
// expiration.
type PINPolicy struct {
	MinimumLength     int      // MinimumPINLength, 4..127; 0 = 4
	MaximumLength     int      // MaximumPINLength, 4..127; 0 = 127
	Digits            CharRule // default require
	LowercaseLetters  CharRule // default disallow
	UppercaseLetters  CharRule // default disallow
	SpecialCharacters CharRule // default disallow
	History           int      // previous PINs that cannot be reused, 0..50
	Expiration        int      // days until the PIN must be changed, 0..730, 0 = never
}

// withDefaults fills the zero fields with the CSP defaults.
func (p PINPolicy) withDefaults() PINPolicy {
	if p.MinimumLength == 0 {
		p.MinimumLength = DefaultMinPINLength
	}
	if p.MaximumLength == 0 {
		p.MaximumLength = DefaultMaxPINLength
	}
	if p.Digits == CharDefault {
		p.Digits = CharRequire
	}
	for _, r := range []*CharRule{&p.LowercaseLetters, &p.UppercaseLetters, &p.SpecialCharacters} {
		if *r == CharDefault {
			*r = CharDisallow
		}
	}
	return p
}

// Validate reports whether the policy is one the CSP accepts (ranges above,
// minimum not above maximum) and that some PIN can satisfy it (not every class
// disallowed). The error matches ErrInvalidConfig.
func (p PINPolicy) Validate() error {
	q := p.withDefaults()
	switch {
	case q.MinimumLength < MinPINLength || q.MinimumLength > MaxPINLength:
		return fmt.Errorf("%w: MinimumPINLength %d outside %d..%d", ErrInvalidConfig, p.MinimumLength, MinPINLength, MaxPINLength)
	case q.MaximumLength < MinPINLength || q.MaximumLength > MaxPINLength:
		return fmt.Errorf("%w: MaximumPINLength %d outside %d..%d", ErrInvalidConfig, p.MaximumLength, MinPINLength, MaxPINLength)
	case q.MinimumLength > q.MaximumLength:
		return fmt.Errorf("%w: MinimumPINLength %d above MaximumPINLength %d", ErrInvalidConfig, q.MinimumLength, q.MaximumLength)
	case q.History < 0 || q.History > MaxPINHistory:
		return fmt.Errorf("%w: PIN History %d outside 0..%d", ErrInvalidConfig, p.History, MaxPINHistory)
	case q.Expiration < 0 || q.Expiration > MaxPINExpiration:
		return fmt.Errorf("%w: PIN Expiration %d outside 0..%d days", ErrInvalidConfig, p.Expiration, MaxPINExpiration)
	}
	allDisallowed := true
	for _, c := range []struct {
		name string
		r    CharRule
	}{{"Digits", q.Digits}, {"LowercaseLetters", q.LowercaseLetters}, {"UppercaseLetters", q.UppercaseLetters}, {"SpecialCharacters", q.SpecialCharacters}} {
		if c.r > CharDisallow {
			return fmt.Errorf("%w: %s rule %d unknown", ErrInvalidConfig, c.name, uint8(c.r))
		}
		if c.r != CharDisallow {
			allDisallowed = false
		}
	}
	if allDisallowed {
		return fmt.Errorf("%w: every character class is disallowed; no PIN can satisfy the policy", ErrInvalidConfig)
	}
	return nil
}

// Rule names a PIN policy rule.
type Rule int

const (
	RuleMinimumLength     Rule = iota + 1 // MinimumPINLength
	RuleMaximumLength                     // MaximumPINLength
	RuleDigits                            // Digits require/disallow
	RuleLowercaseLetters                  // LowercaseLetters require/disallow
	RuleUppercaseLetters                  // UppercaseLetters require/disallow
	RuleSpecialCharacters                 // SpecialCharacters require/disallow
	RuleCharacters                        // a character no PIN may contain (control, invalid UTF-8)
	RuleConstantDelta                     // simple PIN with a constant delta (1111, 1234, 9753)
	RuleHistory                           // PIN among the last History PINs
)

// String is the rule's PassportForWork name (MinimumPINLength, Digits, …),
// or ConstantDelta, Characters.
func (r Rule) String() string { return enum.Name(ruleNames, int(r), "Rule") }

var ruleNames = []string{
	RuleMinimumLength:     "MinimumPINLength",
	RuleMaximumLength:     "MaximumPINLength",
	RuleDigits:            "Digits",
	RuleLowercaseLetters:  "LowercaseLetters",
	RuleUppercaseLetters:  "UppercaseLetters",
	RuleSpecialCharacters: "SpecialCharacters",
	RuleCharacters:        "Characters",
	RuleConstantDelta:     "ConstantDelta",
	RuleHistory:           "History",
}

// Check reports whether pin meets the policy, returning a *PolicyError naming
// the first rule it fails (history is checked separately, with the container
// secret). The PIN is taken in Unicode NFC, so the same PIN typed on different
// keyboards is the same PIN; length counts characters, not bytes.
//
// Classes: digits are Unicode decimal digits, lowercase and uppercase letters
// are Unicode letters with case, and every other printable character
// (space, punctuation, symbols, letters without case) is special.
func (p PINPolicy) Check(pin string) error {
	if err := p.Validate(); err != nil {
		return err
	}
	o := &options{}
	b := o.enterPIN(pin)
	defer clear(b)
	return o.checkPIN(p.withDefaults(), b)
}

// newPIN returns the PIN policy in force for a new PIN of c (the option's,
// else the one c records) and pin entered and checked against it. The
// caller clears the PIN; on an error it is already cleared.
func (o *options) newPIN(c *Container, pin string) (PINPolicy, nfcPIN, error) {
	policy, err := o.pinPolicy(c.cfg.PINPolicy)
	if err != nil {
		return PINPolicy{}, nil, err
	}
	p := o.enterPIN(pin)
	if err := o.checkPIN(policy, p); err != nil {
		clear(p)
		return PINPolicy{}, nil, err
	}
	return policy, p, nil
}

// checkPIN checks pin against a validated, defaulted policy.
func (o *options) checkPIN(p PINPolicy, pin nfcPIN) error { return p.check(pin) }

// check works on an NFC PIN.
func (p PINPolicy) check(pin []byte) error {
	if !utf8.Valid(pin) {
		return &PolicyError{Rule: RuleCharacters, Detail: "the PIN is not valid UTF-8"}
	}
	length := utf8.RuneCount(pin)
	if length < p.MinimumLength {
		return &PolicyError{Rule: RuleMinimumLength, Detail: fmt.Sprintf("at least %d characters", p.MinimumLength)}
	}
	if length > p.MaximumLength {
		return &PolicyError{Rule: RuleMaximumLength, Detail: fmt.Sprintf("at most %d characters", p.MaximumLength)}
	}
	var digits, lower, upper, special int
	for i := 0; i < len(pin); {
		r, size := utf8.DecodeRune(pin[i:])
		i += size
		switch {
		case unicode.IsControl(r) || !unicode.IsPrint(r) && r != ' ':
			return &PolicyError{Rule: RuleCharacters, Detail: "control or unprintable characters are not allowed"}
		case unicode.Is(unicode.Nd, r):
			digits++
		case unicode.IsLower(r):
			lower++
		case unicode.IsUpper(r):
			upper++
		default:
			special++
		}
	}
	for _, c := range []struct {
		rule  Rule
		r     CharRule
		n     int
		class string
	}{
		{RuleDigits, p.Digits, digits, "digit"},
		{RuleLowercaseLetters, p.LowercaseLetters, lower, "lowercase letter"},
		{RuleUppercaseLetters, p.UppercaseLetters, upper, "uppercase letter"},
		{RuleSpecialCharacters, p.SpecialCharacters, special, "special character"},
	} {
		if c.r == CharRequire && c.n == 0 {
			return &PolicyError{Rule: c.rule, Detail: "at least one " + c.class + " is required"}
		}
		if c.r == CharDisallow && c.n > 0 {
			return &PolicyError{Rule: c.rule, Detail: c.class + "s are not allowed"}
		}
	}
	if step, ok := constantDelta(pin); ok {
		// One rule (the WHfB FAQ's constant delta), two messages: a step
		// of zero is one digit repeated, which nobody calls "rising".
		if step == 0 {
			return &PolicyError{Rule: RuleConstantDelta, Detail: "one digit repeated is too simple"}
		}
		return &PolicyError{Rule: RuleConstantDelta, Detail: "digits that rise or fall by a constant step are too simple"}
	}
	return nil
}

// constantDelta reports whether pin is all ASCII digits with the same step,
// modulo 10, between consecutive digits, and that step (0: one digit repeated). The WHfB FAQ: "The PIN can't be a
// simple pattern ... constant delta ... 100 such PINs at any length" — ten
// first digits times ten steps, so the step wraps (8901, 2086 count).
func constantDelta(pin []byte) (step int, ok bool) {
	if len(pin) < 2 {
		return 0, false
	}
	for i := 0; i < len(pin); i++ {
		if pin[i] < '0' || pin[i] > '9' {
			return 0, false
		}
	}
	step = (int(pin[1]) - int(pin[0]) + 10) % 10
	for i := 2; i < len(pin); i++ {
		if (int(pin[i])-int(pin[i-1])+10)%10 != step {
			return 0, false
		}
	}
	return step, true
}

// nfcPIN is a PIN as it travels inside this package: in Unicode NFC, so
// that the same PIN typed on different keyboards is the same PIN, in a
// buffer of its own that the function which made it wipes (clear).
type nfcPIN []byte

// enterPIN is the door every PIN comes in by: it returns the NFC form of
// pin in a fresh buffer the caller wipes. It is the only place a PIN is
// normalised; the policy check, the PIN protector's authValue and the PIN
// history all take its result.
func (o *options) enterPIN(pin string) nfcPIN {
	b := []byte(pin)
	if len(b) == 0 {
		return b
	}
	o.see(secretPIN, b)
	n := norm.NFC.Bytes(b)
	if len(n) == 0 || &n[0] != &b[0] {
		clear(b[:cap(b)])
		o.see(secretPIN, n)
	}
	return n
}
