package telemetry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// settings is what the OTEL_* variables say, checked.
type settings struct {
	enabled     bool
	endpoint    string // full URL traces are POSTed to
	json        bool   // http/json instead of http/protobuf
	headers     map[string]string
	timeout     time.Duration
	gzip        bool
	tls         *tls.Config // https only
	serviceName string
	resource    map[string]string
	sampler     sdktrace.Sampler
	batch       []sdktrace.BatchSpanProcessorOption
}

// errGRPC refuses the gRPC protocol in the operator's words.
var errGRPC = errors.New("jetwatch exports OTLP over HTTP; set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf")

// traced reads a signal-specific variable, falling back to the general one
// (OTEL_EXPORTER_OTLP_TRACES_X, then OTEL_EXPORTER_OTLP_X).
func traced(env func(string) string, suffix string) (string, string) {
	if v := strings.TrimSpace(env("OTEL_EXPORTER_OTLP_TRACES_" + suffix)); v != "" {
		return v, "OTEL_EXPORTER_OTLP_TRACES_" + suffix
	}
	return strings.TrimSpace(env("OTEL_EXPORTER_OTLP_" + suffix)), "OTEL_EXPORTER_OTLP_" + suffix
}

// readSettings interprets the environment. Tracing is off unless an OTLP
// endpoint is set, and off when OTEL_SDK_DISABLED=true or
// OTEL_TRACES_EXPORTER=none; a setting jetwatch cannot honour is an error,
// never silently ignored.
func readSettings(env func(string) string) (settings, error) {
	s := settings{serviceName: "jetwatch", timeout: 10 * time.Second, headers: map[string]string{}}
	if disabled := strings.TrimSpace(env("OTEL_SDK_DISABLED")); disabled != "" {
		off, err := strconv.ParseBool(disabled)
		if err != nil {
			return s, fmt.Errorf("OTEL_SDK_DISABLED=%q: use true or false", disabled)
		}
		if off {
			return s, nil
		}
	}
	switch exp := strings.ToLower(strings.TrimSpace(env("OTEL_TRACES_EXPORTER"))); exp {
	case "none":
		return s, nil
	case "", "otlp":
	default:
		return s, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: jetwatch exports traces by OTLP only; use otlp or none", exp)
	}
	if v, name := traced(env, "PROTOCOL"); v != "" {
		switch v {
		case "http/protobuf":
		case "http/json":
			s.json = true
		case "grpc":
			return s, fmt.Errorf("%s=grpc: %w", name, errGRPC)
		default:
			return s, fmt.Errorf("%s=%q: use http/protobuf or http/json", name, v)
		}
	}
	// The signal-specific endpoint is used as it is; the general one is a
	// base URL the traces path is appended to (as the OTLP spec says).
	endpoint, name := traced(env, "ENDPOINT")
	if endpoint == "" {
		return s, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return s, fmt.Errorf("%s=%q: give a URL such as http://otel-collector:4318", name, endpoint)
	}
	if name == "OTEL_EXPORTER_OTLP_ENDPOINT" {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	} else if u.Path == "" {
		u.Path = "/"
	}
	s.endpoint = u.String()

	if v, name := traced(env, "HEADERS"); v != "" {
		if s.headers, err = parseKeyValues(v); err != nil {
			return s, fmt.Errorf("%s: %w", name, err)
		}
	}
	if v, name := traced(env, "TIMEOUT"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			return s, fmt.Errorf("%s=%q: give milliseconds, such as 10000", name, v)
		}
		s.timeout = time.Duration(ms) * time.Millisecond
	}
	if v, name := traced(env, "COMPRESSION"); v != "" {
		switch v {
		case "gzip":
			s.gzip = true
		case "none":
		default:
			return s, fmt.Errorf("%s=%q: use gzip or none", name, v)
		}
	}
	if u.Scheme == "https" {
		if s.tls, err = readTLS(env); err != nil {
			return s, err
		}
	}

	if s.resource, err = parseKeyValues(env("OTEL_RESOURCE_ATTRIBUTES")); err != nil {
		return s, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	if name, ok := s.resource["service.name"]; ok && name != "" {
		s.serviceName = name
	}
	if name := strings.TrimSpace(env("OTEL_SERVICE_NAME")); name != "" {
		s.serviceName = name
	}
	if s.sampler, err = readSampler(env); err != nil {
		return s, err
	}
	if s.batch, err = readBatch(env); err != nil {
		return s, err
	}
	s.enabled = true
	return s, nil
}

// parseKeyValues reads the W3C-baggage-like list the OTLP headers and
// resource attributes use: key=value pairs separated by commas, values
// percent-encoded.
func parseKeyValues(v string) (map[string]string, error) {
	out := map[string]string{}
	for pair := range strings.SplitSeq(v, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, val, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", pair)
		}
		dec, err := url.PathUnescape(strings.TrimSpace(val))
		if err != nil {
			return nil, fmt.Errorf("value of %s: %w", k, err)
		}
		out[k] = dec
	}
	return out, nil
}

// readTLS reads the CA and client certificate files, if any. Passing the
// TLS configuration explicitly keeps the exporter from reading them from
// the process environment itself.
func readTLS(env func(string) string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if path, name := traced(env, "CERTIFICATE"); path != "" {
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s=%s: no PEM certificate in the file", name, path)
		}
		cfg.RootCAs = pool
	}
	cert, certName := traced(env, "CLIENT_CERTIFICATE")
	key, keyName := traced(env, "CLIENT_KEY")
	if cert != "" || key != "" {
		if cert == "" || key == "" {
			return nil, fmt.Errorf("set both %s and %s, or neither", certName, keyName)
		}
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("%s and %s: %w", certName, keyName, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// readSampler interprets OTEL_TRACES_SAMPLER(_ARG). The default is the
// SDK's: parentbased_always_on.
func readSampler(env func(string) string) (sdktrace.Sampler, error) {
	name := strings.ToLower(strings.TrimSpace(env("OTEL_TRACES_SAMPLER")))
	arg := strings.TrimSpace(env("OTEL_TRACES_SAMPLER_ARG"))
	ratio := func() (sdktrace.Sampler, error) {
		if arg == "" {
			return sdktrace.TraceIDRatioBased(1), nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: give a ratio from 0 to 1", arg)
		}
		return sdktrace.TraceIDRatioBased(r), nil
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio":
		return ratio()
	case "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		return sdktrace.ParentBased(r), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%q: use always_on, always_off, traceidratio or their parentbased_ forms", name)
}

// readBatch interprets the OTEL_BSP_* variables of the batch span
// processor.
func readBatch(env func(string) string) ([]sdktrace.BatchSpanProcessorOption, error) {
	var opts []sdktrace.BatchSpanProcessorOption
	for _, v := range []struct {
		name  string
		apply func(n int) sdktrace.BatchSpanProcessorOption
	}{
		{"OTEL_BSP_SCHEDULE_DELAY", func(n int) sdktrace.BatchSpanProcessorOption {
			return sdktrace.WithBatchTimeout(time.Duration(n) * time.Millisecond)
		}},
		{"OTEL_BSP_EXPORT_TIMEOUT", func(n int) sdktrace.BatchSpanProcessorOption {
			return sdktrace.WithExportTimeout(time.Duration(n) * time.Millisecond)
		}},
		{"OTEL_BSP_MAX_QUEUE_SIZE", sdktrace.WithMaxQueueSize},
		{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", sdktrace.WithMaxExportBatchSize},
	} {
		s := strings.TrimSpace(env(v.name))
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s=%q: give a positive whole number", v.name, s)
		}
		opts = append(opts, v.apply(n))
	}
	return opts, nil
}
