package container

import (
	"fmt"
	"strings"
)

// CanReset is dsregcmd's CanReset: which PIN resets the device can do for the
// user (WHfB PIN reset documentation, "Confirm that PIN Recovery policy is
// enforced on the devices").
type CanReset int

const (
	Unknown                      CanReset = iota // dsregcmd "Unknown"
	DestructiveOnly                              // no PIN reset protector
	NonDestructiveOnly                           // dsregcmd "NonDestructiveOnly"
	DestructiveAndNonDestructive                 // PIN reset protector enrolled
)

// String is the value as dsregcmd prints it.
func (c CanReset) String() string {
	switch c {
	case DestructiveOnly:
		return "DestructiveOnly"
	case NonDestructiveOnly:
		return "NonDestructiveOnly"
	case DestructiveAndNonDestructive:
		return "DestructiveAndNonDestructive"
	}
	return "Unknown"
}

// UserState is the "User State" section of dsregcmd /status for the user who
// owns a container. Field names follow dsregcmd.
type UserState struct {
	NgcSet              bool
	NgcKeyId            string // spelled as dsregcmd prints it
	CanReset            CanReset
	WorkplaceJoined     bool
	WamDefaultSet       bool
	WamDefaultAuthority string
	WamDefaultId        string // spelled as dsregcmd prints it
	WamDefaultGUID      string

	// RollbackProtection is not a dsregcmd field (String does not print
	// it): whether old copies of the container stop working after a PIN
	// change or a reset, and if not, why (Container.RollbackProtection).
	RollbackProtection Rollback
}

// UserState reports the container as dsregcmd would: NgcSet YES, its NgcKeyId,
// and CanReset DestructiveAndNonDestructive when the PIN reset protector is
// enrolled, DestructiveOnly when not.
func (c *Container) UserState() UserState {
	s := UserState{
		NgcSet:          true,
		NgcKeyId:        c.keyID,
		CanReset:        DestructiveOnly,
		WorkplaceJoined: c.cfg.WorkplaceJoined,

		RollbackProtection: c.RollbackProtection(),
	}
	if c.HasProtector() {
		s.CanReset = DestructiveAndNonDestructive
	}
	if w := c.cfg.WAMDefault; w != nil && *w != (WAMAccount{}) {
		s.WamDefaultSet = true
		s.WamDefaultAuthority = w.Authority
		s.WamDefaultId = w.ID
		s.WamDefaultGUID = w.GUID
	}
	return s
}

// dsregcmd's layout: a 72-column box around the section title, then one line
// per field with the name right-aligned so that " : " follows column 26.
const (
	boxWidth  = 72
	nameWidth = 26
)

// String renders the state exactly as dsregcmd /status prints its User State
// section, as in the WHfB PIN reset documentation's samples. Fields dsregcmd
// omits when the default WAM account is not set are omitted here too.
func (s UserState) String() string {
	var b strings.Builder
	rule := "+" + strings.Repeat("-", boxWidth-2) + "+\n"
	b.WriteString(rule)
	fmt.Fprintf(&b, "| %-*s|\n", boxWidth-3, "User State")
	b.WriteString(rule)
	b.WriteString("\n")
	line := func(name, value string) { fmt.Fprintf(&b, "%*s : %s\n", nameWidth, name, value) }
	line("NgcSet", yesNo(s.NgcSet))
	if s.NgcSet {
		line("NgcKeyId", s.NgcKeyId)
	}
	line("CanReset", s.CanReset.String())
	line("WorkplaceJoined", yesNo(s.WorkplaceJoined))
	line("WamDefaultSet", yesNo(s.WamDefaultSet))
	if s.WamDefaultSet {
		line("WamDefaultAuthority", s.WamDefaultAuthority)
		line("WamDefaultId", s.WamDefaultId)
		line("WamDefaultGUID", s.WamDefaultGUID)
	}
	b.WriteString("\n")
	b.WriteString(rule)
	return b.String()
}

func yesNo(v bool) string {
	if v {
		return "YES"
	}
	return "NO"
}
