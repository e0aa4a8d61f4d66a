package service

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// serviceModules are the modules service may link: nats.go, gobreaker,
// the OpenTelemetry API and client_golang, with what they need.
var serviceModules = map[string]bool{
	"github.com/nats-io/nats.go": true, "github.com/nats-io/nkeys": true, "github.com/nats-io/nuid": true,
	"github.com/klauspost/compress": true, "golang.org/x/crypto": true, "golang.org/x/sys": true,
	"github.com/sony/gobreaker/v2": true,
	"go.opentelemetry.io/otel":     true, "go.opentelemetry.io/otel/trace": true, "go.opentelemetry.io/otel/metric": true,
	"go.opentelemetry.io/otel/log": true, "go.opentelemetry.io/auto/sdk": true,
	"github.com/go-logr/logr": true, "github.com/go-logr/stdr": true, "github.com/cespare/xxhash/v2": true,
	"github.com/prometheus/client_golang": true, "github.com/prometheus/client_model": true,
	"github.com/prometheus/common": true, "github.com/prometheus/procfs": true, "github.com/beorn7/perks": true,
	"github.com/munnerz/goautoneg": true, "github.com/pandatix/go-abnf": true, "google.golang.org/protobuf": true,
}

// servicePackages are the jetwatch packages service may link: the
// envelope and small helpers that import nothing of the server side.
var servicePackages = map[string]bool{
	"github.com/jetwatch/jetwatch/service":               true,
	"github.com/jetwatch/jetwatch/deadletter":            true,
	"github.com/jetwatch/jetwatch/internal/directget":    true,
	"github.com/jetwatch/jetwatch/internal/ensure":       true,
	"github.com/jetwatch/jetwatch/internal/natsname":     true,
	"github.com/jetwatch/jetwatch/internal/tracecontext": true,
}

// forbidden says why a dependency must never reach service, for the
// ones a careless import would bring in.
var forbidden = map[string]string{
	"github.com/mattn/go-sqlite3":                                     "cgo SQLite",
	"github.com/nats-io/nats-server/v2":                               "the NATS server",
	"github.com/labstack/echo/v4":                                     "the web framework",
	"github.com/a-h/templ":                                            "the view templates",
	"go.opentelemetry.io/otel/sdk":                                    "the OpenTelemetry SDK (a service brings its own)",
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp": "the OTLP exporter",
}

// TestServiceLinksNoServerSide keeps service light for the teams that
// adopt it: go list -deps of it names nothing of jetwatch's server side
// (store, dlq, web, collector...), no cgo package, and no module beyond
// nats.go, gobreaker, the OpenTelemetry API and client_golang.
func TestServiceLinksNoServerSide(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to list dependencies with")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-json=ImportPath,Standard,Module,CgoFiles,Imports", ".").Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		t.Fatalf("go list -deps: %v\n%s", err, exit.Stderr)
	}
	require.NoError(t, err)
	type pkg struct {
		ImportPath string
		Standard   bool
		Module     *struct{ Path string }
		CgoFiles   []string
		Imports    []string
	}
	var pkgs []pkg
	importers := map[string]string{} // a package -> one package importing it
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		pkgs = append(pkgs, p)
		for _, imp := range p.Imports {
			importers[imp] = p.ImportPath
		}
	}
	require.NotEmpty(t, pkgs)
	// chain says how service reaches a package.
	chain := func(path string) string {
		links := []string{path}
		for p := path; importers[p] != "" && len(links) < 20; p = importers[p] {
			links = append(links, importers[p])
		}
		return strings.Join(links, " <- ")
	}
	for _, p := range pkgs {
		if p.Standard {
			continue
		}
		module := ""
		if p.Module != nil {
			module = p.Module.Path
		}
		switch {
		case forbidden[module] != "":
			t.Errorf("service links %s (%s): %s", p.ImportPath, forbidden[module], chain(p.ImportPath))
		case len(p.CgoFiles) > 0:
			t.Errorf("service links %s, which uses cgo: %s", p.ImportPath, chain(p.ImportPath))
		case module == "github.com/jetwatch/jetwatch":
			if !servicePackages[p.ImportPath] {
				t.Errorf("service links jetwatch's %s, which is not one of the packages it may use (the envelope "+
					"and small NATS helpers): %s; move what service needs into a package that links nothing of the server side",
					p.ImportPath, chain(p.ImportPath))
			}
		case !serviceModules[module]:
			t.Errorf("service links %s from module %s, beyond nats.go, gobreaker, the OpenTelemetry API and client_golang: %s",
				p.ImportPath, module, chain(p.ImportPath))
		}
	}
}
