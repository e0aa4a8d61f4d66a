package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTheDockerfileBuildsAWorkingBinary runs the Dockerfile's go build on
// this machine and checks the binary, and the manifest against its settings.
// It compiles jetwatch: about a minute cold.
func TestTheDockerfileBuildsAWorkingBinary(t *testing.T) {
	t.Parallel()
	bin := jetwatchBinary(t)

	t.Run("version", func(t *testing.T) {
		out, err := runJetwatch(bin, "version")
		require.NoError(t, err, "%s", out)
		require.Regexp(t, `^jetwatch \S+\n$`, out)
	})

	settings := map[string]string{} // env -> flag
	t.Run("serve --help", func(t *testing.T) {
		out, err := runJetwatch(bin, "serve", "--help")
		require.NoError(t, err, "%s", out)
		settings = serveSettings(t, out)
		for env, flag := range map[string]string{"JETWATCH_LISTEN": "listen", "JETWATCH_DATA": "data", "NATS_CREDS": "creds", "NATS_URL": "server"} {
			require.Equal(t, flag, settings[env], "serve --help names --%s (env %s)", flag, env)
		}
	})

	t.Run("the image's environment is settings", func(t *testing.T) {
		require.NotEmpty(t, settings, "needs serve --help")
		env := imageEnv(t, parseDockerfile(t)[1])
		require.NotEmpty(t, env)
		for name := range env {
			require.NotEmpty(t, settings[name], "the Dockerfile sets %s, which jetwatch serve does not read", name)
		}
	})

	t.Run("kubernetes manifest uses real settings", func(t *testing.T) {
		require.NotEmpty(t, settings, "needs serve --help")
		checkManifestSettings(t, settings)
	})

	var users string
	usersDir := t.TempDir() // outlives the subtest
	t.Run("user add", func(t *testing.T) {
		users = checkUserAdd(t, bin, usersDir)
	})

	t.Run("serve as the Deployment configures it", func(t *testing.T) {
		require.NotEmpty(t, users, "needs user add")
		checkServeAsDeployed(t, bin, users)
	})
}

var built struct {
	once sync.Once
	dir  string
	bin  string
}

// jetwatchBinary builds jetwatch with the Dockerfile's go build command,
// once for every test of the package (a cold build takes about a minute),
// and returns its path.
func jetwatchBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "jetwatch-deploy-test-")
		require.NoError(t, err)
		built.dir = dir
		built.bin = buildWithDockerfileCommand(t, dir)
	})
	require.NotEmpty(t, built.bin, "building jetwatch failed (in the test that built it first)")
	return built.bin
}

// TestMain removes the binary jetwatchBinary built.
func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir) //nolint:errcheck // a temporary directory
	}
	os.Exit(code)
}

// runJetwatch runs the binary with an empty environment, so that settings
// of the machine running the test do not leak in.
func runJetwatch(bin string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{}
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

var (
	helpFlag = regexp.MustCompile(`^  -([a-z0-9-]+)`)
	helpEnv  = regexp.MustCompile(`\(env ([A-Z0-9_]+)\)`)
)

// serveSettings reads the flag package's usage output: each flag line is
// followed by its usage, which names its environment variable.
func serveSettings(t *testing.T, help string) map[string]string {
	t.Helper()
	settings := map[string]string{}
	flag := ""
	for _, line := range strings.Split(help, "\n") {
		if m := helpFlag.FindStringSubmatch(line); m != nil {
			flag = m[1]
		}
		if m := helpEnv.FindStringSubmatch(line); m != nil && flag != "" {
			settings[m[1]] = flag
			flag = ""
		}
	}
	require.Greater(t, len(settings), 10, "serve --help lists flags with their variables:\n%s", help)
	return settings
}
