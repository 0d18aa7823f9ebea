//go:build interop

package interop

import (
	"os"
	"testing"

	"github.com/cistern-mail/cistern/internal/testproc"
)

// TestMain removes the cistern binary the tests built (testproc.BuildCistern).
func TestMain(m *testing.M) {
	code := m.Run()
	testproc.RemoveBuild()
	os.Exit(code)
}
