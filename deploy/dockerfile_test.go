package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, COPY, ...
	args string
}

// stage is the instructions from one FROM to the next.
type stage struct {
	name, image string
	ins         []instruction
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// last is the stage's last cmd instruction, the one that takes effect.
func (s stage) last(t *testing.T, cmd string) instruction {
	t.Helper()
	all := s.all(cmd)
	require.NotEmpty(t, all, "stage %q has no %s", s.name, cmd)
	return all[len(all)-1]
}

// parseDockerfile reads the repository's Dockerfile into stages. It knows
// only the plain syntax the Dockerfile uses (no heredocs); anything fancier
// fails a test rather than being misread.
func parseDockerfile(t *testing.T) []stage {
	t.Helper()
	f, err := os.Open("../Dockerfile")
	require.NoError(t, err)
	defer f.Close()
	var stages []stage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := stage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			return
		}
		require.NotEmpty(t, stages, "%s before FROM", in.cmd)
		require.NotContains(t, in.args, "<<", "heredocs are beyond this test's parser: keep the Dockerfile plain")
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	require.NoError(t, sc.Err())
	flush()
	require.Len(t, stages, 2, "a build stage and a runtime stage")
	return stages
}

// execForm decodes a JSON-array (exec form) instruction argument.
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	a := strings.TrimSpace(in.args)
	require.True(t, strings.HasPrefix(a, "[") && strings.HasSuffix(a, "]"), "%s must use the exec form [...]: %s", in.cmd, a)
	var out []string
	for _, part := range strings.Split(a[1:len(a)-1], ",") {
		s, err := strconv.Unquote(strings.TrimSpace(part))
		require.NoError(t, err, "%s %s", in.cmd, a)
		out = append(out, s)
	}
	return out
}

// imageEnv is the runtime stage's ENV, in the KEY=VALUE form.
func imageEnv(t *testing.T, s stage) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, in := range s.all("ENV") {
		for _, kv := range strings.Fields(in.args) {
			k, v, ok := strings.Cut(kv, "=")
			require.True(t, ok, "ENV %s: use KEY=VALUE", in.args)
			require.NotContains(t, v, `"`, "ENV %s: no quotes, so this test reads it as Docker does", in.args)
			env[k] = v
		}
	}
	return env
}

// buildCommand is the build stage's `go build` RUN line: the environment it
// sets, the go arguments, and the output path it writes.
type buildCommand struct {
	env    []string
	args   []string // after "go"
	output string
}

func dockerBuildCommand(t *testing.T, build stage) buildCommand {
	t.Helper()
	var line string
	for _, in := range build.all("RUN") {
		if strings.Contains(in.args, "go build") {
			require.Empty(t, line, "one go build in the build stage")
			line = in.args
		}
	}
	require.NotEmpty(t, line, "the build stage has no RUN ... go build")
	// A plain command splits on spaces exactly as sh would.
	require.False(t, strings.ContainsAny(line, "'\"$;&|<>`()*?"), "keep the go build line one plain command, so this test runs it as sh would: %s", line)
	var bc buildCommand
	words := strings.Fields(line)
	for len(words) > 0 && strings.Contains(words[0], "=") {
		bc.env = append(bc.env, words[0])
		words = words[1:]
	}
	require.GreaterOrEqual(t, len(words), 2)
	require.Equal(t, []string{"go", "build"}, words[:2], "RUN %s", line)
	bc.args = words[1:]
	for i, w := range bc.args {
		if w == "-o" && i+1 < len(bc.args) {
			bc.output = bc.args[i+1]
		}
	}
	require.NotEmpty(t, bc.output, "go build -o PATH: the runtime stage copies PATH")
	return bc
}

// buildWithDockerfileCommand runs the Dockerfile's go build on this machine,
// writing the binary into dir instead of the image's path, and returns it.
func buildWithDockerfileCommand(t *testing.T, dir string) string {
	t.Helper()
	bc := dockerBuildCommand(t, parseDockerfile(t)[0])
	bin := filepath.Join(dir, "jetwatch")
	args := append([]string(nil), bc.args...)
	for i := range args {
		if i > 0 && args[i-1] == "-o" {
			args[i] = bin
		}
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = ".." // the build stage's WORKDIR holds the whole repository
	cmd.Env = append(os.Environ(), bc.env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go %s:\n%s", strings.Join(args, " "), out)
	return bin
}

func TestDockerfileBuildStageMatchesTheREADMEBuild(t *testing.T) {
	t.Parallel()
	build := parseDockerfile(t)[0]
	gomod, err := os.ReadFile("../go.mod")
	require.NoError(t, err)
	var goVersion string
	for _, line := range strings.Split(string(gomod), "\n") {
		if v, ok := strings.CutPrefix(line, "go "); ok {
			goVersion = strings.TrimSpace(v)
		}
	}
	require.NotEmpty(t, goVersion)
	require.Equal(t, "golang:"+goVersion+"-bookworm", build.image,
		"the build image is go.mod's Go on Debian 12, whose glibc the runtime image has")

	bc := dockerBuildCommand(t, build)
	require.Contains(t, bc.env, "CGO_ENABLED=1", "mattn/go-sqlite3 needs cgo")
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	var readmeBuild []string
	for _, line := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(line, "go build ") {
			readmeBuild = strings.Fields(line)
			break
		}
	}
	require.NotEmpty(t, readmeBuild, "README shows a go build command")
	for i, w := range readmeBuild[1:] { // after "go"
		if w == "-o" || readmeBuild[i] == "-o" {
			continue // its output path
		}
		require.Contains(t, bc.args, w, "the Dockerfile builds as README does: %s", strings.Join(readmeBuild, " "))
	}
}

func TestDockerfileRuntimeStage(t *testing.T) {
	t.Parallel()
	stages := parseDockerfile(t)
	build, runtime := stages[0], stages[1]
	require.Contains(t, runtime.image, "debian12", "the runtime's glibc matches the bookworm build stage")

	user := runtime.last(t, "USER").args
	uid, _, _ := strings.Cut(user, ":")
	n, err := strconv.Atoi(uid)
	require.NoError(t, err, "USER %s: numeric, so Kubernetes' runAsNonRoot can verify it", user)
	require.NotZero(t, n, "USER must not be root")

	env := imageEnv(t, runtime)
	host, port, ok := strings.Cut(env["JETWATCH_LISTEN"], ":")
	require.True(t, ok, "the image sets JETWATCH_LISTEN host:port, got %q", env["JETWATCH_LISTEN"])
	require.Equal(t, "0.0.0.0", host, "reachable from outside the container")
	require.Equal(t, port, runtime.last(t, "EXPOSE").args, "EXPOSE is the listen port")
	require.NotContains(t, env, "JETWATCH_INSECURE_NO_AUTH", "the image must not switch sign-in off")
	for _, in := range append(runtime.all("CMD"), runtime.all("ENTRYPOINT")...) {
		require.NotContains(t, in.args, "insecure", "the image must not switch sign-in off")
	}

	data := env["JETWATCH_DATA"]
	require.NotEmpty(t, data)
	require.Equal(t, []string{data}, execForm(t, runtime.last(t, "VOLUME")), "VOLUME is the data directory")
	ownedData := false
	for _, in := range runtime.all("COPY") {
		f := strings.Fields(in.args)
		if f[len(f)-1] == data && strings.Contains(in.args, "--chown="+user) {
			ownedData = true
		}
	}
	require.True(t, ownedData, "a COPY --chown=%s creates %s, so a fresh volume is writable by the user", user, data)

	entry := execForm(t, runtime.last(t, "ENTRYPOINT"))
	require.Len(t, entry, 2)
	require.Equal(t, "jetwatch", filepath.Base(entry[0]))
	require.Equal(t, "serve", entry[1])
	copied := false
	for _, in := range runtime.all("COPY") {
		f := strings.Fields(in.args)
		if strings.Contains(in.args, "--from="+build.name) && f[len(f)-2] == dockerBuildCommand(t, build).output && f[len(f)-1] == entry[0] {
			copied = true
		}
	}
	require.True(t, copied, "the runtime stage copies the built binary to %s", entry[0])
}

func TestDockerignoreKeepsTheContextSmall(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../.dockerignore")
	require.NoError(t, err)
	lines := strings.Split(string(b), "\n")
	for _, want := range []string{".git", "jetwatch-data"} {
		require.Contains(t, lines, want)
	}
	for _, needed := range []string{"go.mod", "go.sum", "cmd", "static", "*.go"} {
		require.NotContains(t, lines, needed, "the build needs %s", needed)
	}
}
