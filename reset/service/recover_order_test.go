package service

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// factFields maps the fields of attempt to the fact that holds them; the
// request's own fields (r, rid, client) are known before any check (0).
// check is the runner's: no check may touch it.
var factFields = map[string]fact{
	"r": 0, "rid": 0, "client": 0,
	"body": factBody, "req": factBody,
	"uw":    factServiceKey,
	"token": factCredentials, "proof": factCredentials,
	"claims": factClaims,
	"pr":     factProof,
}

// orderError is the first check of checks that reads a fact no check
// before it sets, or sets a fact another check sets too.
func orderError(checks []check) error {
	var have fact
	setBy := map[fact]string{}
	for _, c := range checks {
		if missing := c.reads &^ have; missing != 0 {
			return fmt.Errorf("check %q reads facts %08b that no check before it sets", c.name, missing)
		}
		for f := fact(1); f != 0 && f <= c.sets; f <<= 1 {
			if c.sets&f == 0 {
				continue
			}
			if prev, ok := setBy[f]; ok {
				return fmt.Errorf("checks %q and %q both set fact %08b", prev, c.name, f)
			}
			setBy[f] = c.name
		}
		have |= c.sets
	}
	return nil
}

// TestRecoverCheckOrder holds the recover path to its order: each check
// reads only facts set before it, and the limits come where the security
// design says.
func TestRecoverCheckOrder(t *testing.T) {
	require.NoError(t, orderError(recoverChecks))

	// The order test catches a check moved before the one whose fact it
	// reads.
	for i := 1; i < len(recoverChecks); i++ {
		swapped := append([]check(nil), recoverChecks...)
		swapped[i-1], swapped[i] = swapped[i], swapped[i-1]
		if recoverChecks[i].reads&recoverChecks[i-1].sets != 0 {
			assert.Error(t, orderError(swapped), "%s moved before %s", recoverChecks[i].name, recoverChecks[i-1].name)
		}
	}

	index := map[string]int{}
	for i, c := range recoverChecks {
		index[c.name] = i
	}
	// Only the address's bucket is drawn before the token is verified.
	assert.Less(t, index["address_limit"], index["token"])
	// Every check after the user's limits can refuse an authenticated
	// request, and each stands on those limits; none before them reads
	// more than the authentication.
	for i, c := range recoverChecks {
		switch {
		case i > index["user_limit"]:
			assert.NotZero(t, c.reads&factLimited, "%s must come after the user's limits", c.name)
		case i < index["user_limit"]:
			assert.Less(t, index[c.name], index["user_limit"])
		}
	}
	assert.Equal(t, index["proof"]+1, index["user_limit"], "the user's limits come right after the authentication")
	assert.Equal(t, len(recoverChecks)-1, index["replay"], "the token is spent only when every other check has passed")

	assert.Equal(t, []string{
		"content_type", "body", "return_key", "service_key", "envelope_device", "credentials_present",
		"address_limit", "token", "client_app", "mfa", "token_bound", "proof", "user_limit",
		"tenant", "account", "device", "binding", "replay",
	}, RecoverChecks())
}

// TestRecoverCheckDeclarations reads each check's code and holds its
// declared reads and sets to the attempt fields it really reads and
// assigns: a check that starts reading a field without declaring it (and
// so without the order test seeing it) fails here.
func TestRecoverCheckDeclarations(t *testing.T) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	require.NoError(t, err)
	funcs := map[string]*ast.FuncDecl{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, 0)
		require.NoError(t, err)
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv != nil {
				funcs[fd.Name.Name] = fd
			}
		}
	}
	for _, c := range recoverChecks {
		full := runtime.FuncForPC(reflect.ValueOf(c.run).Pointer()).Name()
		name := full[strings.LastIndex(full, ".")+1:]
		fd := funcs[name]
		require.NotNil(t, fd, "check %s: no method %s", c.name, name)
		reads, sets, err := factsOf(fd)
		require.NoError(t, err, "check %s", c.name)
		assert.Equal(t, c.reads&^factLimited, reads, "check %s (%s): declared reads %08b, code reads %08b", c.name, name, c.reads, reads)
		assert.Equal(t, c.sets&^factLimited, sets, "check %s (%s): declared sets %08b, code sets %08b", c.name, name, c.sets, sets)
	}
}

// factsOf returns the facts a check's code reads and sets through its
// *attempt parameter; an error when it hands the attempt on whole (its
// use could then not be seen) or touches a field no fact holds.
func factsOf(fd *ast.FuncDecl) (reads, sets fact, err error) {
	params := fd.Type.Params.List
	if len(params) != 2 || len(params[1].Names) != 1 {
		return 0, 0, fmt.Errorf("%s: want (ctx, at *attempt)", fd.Name.Name)
	}
	at := params[1].Names[0].Name
	assigned := map[*ast.SelectorExpr]bool{}
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		if as, ok := n.(*ast.AssignStmt); ok {
			for _, l := range as.Lhs {
				if sel, ok := l.(*ast.SelectorExpr); ok {
					assigned[sel] = true
				}
			}
		}
		return true
	})
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		if err != nil {
			return false
		}
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			// at.field selectors are not descended into: any other use
			// of at is the attempt handed on whole.
			if id, ok := n.(*ast.Ident); ok && id.Name == at {
				err = fmt.Errorf("%s hands %s on whole", fd.Name.Name, at)
			}
			return true
		}
		id, ok := sel.X.(*ast.Ident)
		if !ok || id.Name != at {
			return true
		}
		f, ok := factFields[sel.Sel.Name]
		if !ok {
			err = fmt.Errorf("%s touches %s.%s, which no fact holds", fd.Name.Name, at, sel.Sel.Name)
			return false
		}
		if assigned[sel] {
			sets |= f
		} else {
			reads |= f
		}
		return false
	})
	return reads, sets, err
}
