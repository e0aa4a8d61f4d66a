package web

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPagesDoNotDependOnTheDemo keeps the UI packages free of the demo
// and of nats-server, which the demo embeds: a dashboard binary should not
// link a NATS server to show a page.
func TestPagesDoNotDependOnTheDemo(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-tags", "sqlite_fts5", "-deps", ".", "../views").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, dep := range strings.Fields(string(out)) {
		require.NotEqual(t, "github.com/jetwatch/jetwatch/demo", dep, "web and views must not import the demo")
		require.False(t, strings.HasPrefix(dep, "github.com/nats-io/nats-server/"), "web and views must not depend on nats-server (%s)", dep)
	}
}
