package explain_test

import (
	"fmt"
	"time"

	"github.com/hellosim/hellosim/reset/explain"
	"github.com/hellosim/hellosim/reset/service"
)

// The PIN reset service refuses a recovery because the user tried too
// often; the user is told when to try again, not the HTTP status.
func ExampleMessage() {
	err := fmt.Errorf("reset: recover: %w", &service.Error{
		Status: 429, Code: service.CodeRateLimited, RetryAfter: 90 * time.Second,
	})
	fmt.Println(explain.Message(err))
	// Output:
	// Too many PIN reset attempts. Try again in 1m30s.
}
