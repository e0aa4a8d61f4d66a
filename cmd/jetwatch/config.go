package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/jetwatch/jetwatch/collector"
	"github.com/jetwatch/jetwatch/internal/natsconn"
	"github.com/jetwatch/jetwatch/internal/prototypes"
	"github.com/jetwatch/jetwatch/journey"
	"github.com/jetwatch/jetwatch/views"
	"github.com/jetwatch/jetwatch/web"
)

// config is everything serve and demo are told by flags and environment.
type config struct {
	Listen         string
	Data           string
	SampleInterval time.Duration
	StallAfter     time.Duration
	HistoryRaw     time.Duration
	History5m      time.Duration
	History1h      time.Duration
	LogFormat      string
	LogLevel       string

	NATS   natsconn.Options
	System natsconn.Options
	// AllAccounts samples every account through the system account.
	AllAccounts bool
	// Accounts are --account NAME=CONTEXT: more accounts whose dead
	// letters are captured, each through a user of its own. Parsed from
	// accountArgs.
	Accounts    []accountSpec
	accountArgs accountsValue

	AdvisoryStream string
	// CountAPICalls subscribes to the API audit advisories (see
	// collector.TimelineConfig.CountAPICalls).
	CountAPICalls  bool
	DLQStream      string
	StreamReplicas int
	CaptureStreams string
	TraceURL       string

	JourneyStreams   string
	CorrelateBy      string
	JourneyRetention time.Duration
	JourneyMaxRows   int
	InsecureNoAuth   bool

	Users             string
	SessionKey        string
	SessionTTL        time.Duration
	SecureCookies     bool
	TrustedProxies    string
	ProxyUserHeader   string
	ProxyGroupsHeader string
	ProxyRoles        string
	TLSCert           string
	TLSKey            string
	HidePayloads      bool
	RedactHeaders     string
	RedactFields      string
	RedeliverSubjects string
	ProtoDescriptors  string
	ProtoTypes        string

	Rules         string
	AlertInterval time.Duration
	ExternalURL   string
	// Env looks up environment variables, for secret_env in the rules.
	Env func(string) string

	// demo only
	NATSPort int
	// DemoReceiver is the demo's webhook receiver, served at /demo/receiver.
	DemoReceiver web.DemoReceiver

	// Tracing is not a flag: startTracing sets it from the OTEL_*
	// variables. Nil means no tracing.
	Tracing trace.TracerProvider
}

// setting is one flag with the environment variable that sets its default.
// The table drives parsing, --help and the README's configuration table
// (a test keeps the README in step).
type setting struct {
	flag, env, usage string
	demo, serve      bool
	bind             func(fs *flag.FlagSet, name, def, usage string) error
	def              string
}

func stringSetting(p *string) func(*flag.FlagSet, string, string, string) error {
	return func(fs *flag.FlagSet, name, def, usage string) error {
		fs.StringVar(p, name, def, usage)
		return nil
	}
}

func durationSetting(p *time.Duration) func(*flag.FlagSet, string, string, string) error {
	return func(fs *flag.FlagSet, name, def, usage string) error {
		d, err := time.ParseDuration(def)
		if err != nil {
			return fmt.Errorf("%q is not a duration (like 10s, 5m, 24h): %w", def, err)
		}
		fs.DurationVar(p, name, d, usage)
		return nil
	}
}

func boolSetting(p *bool) func(*flag.FlagSet, string, string, string) error {
	return func(fs *flag.FlagSet, name, def, usage string) error {
		b := false
		if def != "" {
			var err error
			if b, err = strconv.ParseBool(def); err != nil {
				return fmt.Errorf("%q is not true or false: %w", def, err)
			}
		}
		fs.BoolVar(p, name, b, usage)
		return nil
	}
}

func intSetting(p *int) func(*flag.FlagSet, string, string, string) error {
	return func(fs *flag.FlagSet, name, def, usage string) error {
		n, err := strconv.Atoi(def)
		if err != nil {
			return fmt.Errorf("%q is not a number: %w", def, err)
		}
		fs.IntVar(p, name, n, usage)
		return nil
	}
}

func settings(c *config) []setting {
	both := func(s setting) setting { s.demo, s.serve = true, true; return s }
	serve := func(s setting) setting { s.serve = true; return s }
	demo := func(s setting) setting { s.demo = true; return s }
	return []setting{
		both(setting{flag: "listen", env: "JETWATCH_LISTEN", def: "127.0.0.1:8080", usage: "address the dashboard, API, /metrics and probes listen on", bind: stringSetting(&c.Listen)}),
		both(setting{flag: "data", env: "JETWATCH_DATA", def: "./jetwatch-data", usage: "directory of jetwatch's SQLite index (and, in demo, the embedded NATS store)", bind: stringSetting(&c.Data)}),
		both(setting{flag: "sample-interval", env: "JETWATCH_SAMPLE_INTERVAL", def: "10s", usage: "how often every stream and consumer is sampled", bind: durationSetting(&c.SampleInterval)}),
		serve(setting{flag: "stall-after", env: "JETWATCH_STALL_AFTER", def: "5m", usage: "a consumer with unacknowledged messages and no ack for this long is stalled, or stopped when nobody consumes, without waiting for a full window of samples", bind: durationSetting(&c.StallAfter)}),
		demo(setting{flag: "stall-after", env: "JETWATCH_STALL_AFTER", def: "30s", usage: "a consumer with unacknowledged messages and no ack for this long is stalled, or stopped when nobody consumes, without waiting for a full window of samples", bind: durationSetting(&c.StallAfter)}),
		both(setting{flag: "history-raw", env: "JETWATCH_HISTORY_RAW", def: "24h", usage: "how long raw samples are kept before they become 5-minute buckets", bind: durationSetting(&c.HistoryRaw)}),
		both(setting{flag: "history-5m", env: "JETWATCH_HISTORY_5M", def: "168h", usage: "how long 5-minute buckets are kept before they become hourly buckets", bind: durationSetting(&c.History5m)}),
		both(setting{flag: "history-1h", env: "JETWATCH_HISTORY_1H", def: "720h", usage: "how long hourly buckets are kept", bind: durationSetting(&c.History1h)}),
		both(setting{flag: "log-format", env: "JETWATCH_LOG_FORMAT", def: "text", usage: "log format: text or json", bind: stringSetting(&c.LogFormat)}),
		both(setting{flag: "log-level", env: "JETWATCH_LOG_LEVEL", def: "info", usage: "log level: debug, info, warn or error", bind: stringSetting(&c.LogLevel)}),

		both(setting{flag: "advisory-stream", env: "JETWATCH_ADVISORY_STREAM", def: "JETWATCH_ADVISORIES", usage: "stream that captures JetStream advisories (created if missing)", bind: stringSetting(&c.AdvisoryStream)}),
		both(setting{flag: "count-api-calls", env: "JETWATCH_COUNT_API_CALLS", usage: "count other clients' JetStream API calls by outcome (jetwatch_jetstream_api_calls_total) from the API audit advisories; the server then writes one, with the whole response, for every API call, jetwatch's own sampling included", bind: boolSetting(&c.CountAPICalls)}),
		both(setting{flag: "dlq-stream", env: "JETWATCH_DLQ_STREAM", def: "DLQ", usage: "stream that holds dead letters on dlq.> (created if missing)", bind: stringSetting(&c.DLQStream)}),
		both(setting{flag: "stream-replicas", env: "JETWATCH_STREAM_REPLICAS", def: "1", usage: "replicas of the streams jetwatch creates", bind: intSetting(&c.StreamReplicas)}),
		both(setting{flag: "capture-streams", env: "JETWATCH_CAPTURE_STREAMS", usage: "streams whose failed messages are copied to the DLQ, comma separated, * for any run of characters (e.g. ORDERS,PAY*); default: every user stream", bind: stringSetting(&c.CaptureStreams)}),

		both(setting{flag: "insecure-no-auth", env: "JETWATCH_INSECURE_NO_AUTH", usage: "serve on a non-loopback address without sign-in: anyone who reaches it can redeliver and discard dead letters", bind: boolSetting(&c.InsecureNoAuth)}),
		serve(setting{flag: "users", env: "JETWATCH_USERS", usage: "users file (name:role:bcrypt-hash lines, written by jetwatch user add): enables the sign-in page", bind: stringSetting(&c.Users)}),
		serve(setting{flag: "session-key", env: "JETWATCH_SESSION_KEY", usage: "key signing session cookies, 32+ characters, the same on every replica (prefer the environment variable); default: random, so sessions end on restart", bind: stringSetting(&c.SessionKey)}),
		serve(setting{flag: "session-ttl", env: "JETWATCH_SESSION_TTL", def: "12h", usage: "how long a sign-in lasts", bind: durationSetting(&c.SessionTTL)}),
		serve(setting{flag: "secure-cookies", env: "JETWATCH_SECURE_COOKIES", usage: "mark cookies Secure although jetwatch serves plain HTTP (behind a TLS-terminating proxy)", bind: boolSetting(&c.SecureCookies)}),
		serve(setting{flag: "trusted-proxies", env: "JETWATCH_TRUSTED_PROXIES", usage: "addresses or CIDRs of reverse proxies: their X-Forwarded-For and proxy user headers are believed", bind: stringSetting(&c.TrustedProxies)}),
		serve(setting{flag: "proxy-user-header", env: "JETWATCH_PROXY_USER_HEADER", usage: "header a trusted proxy names the signed-in user in (e.g. X-Forwarded-User); enables proxy sign-in", bind: stringSetting(&c.ProxyUserHeader)}),
		serve(setting{flag: "proxy-groups-header", env: "JETWATCH_PROXY_GROUPS_HEADER", def: "X-Forwarded-Groups", usage: "header a trusted proxy lists the user's groups in, comma separated", bind: stringSetting(&c.ProxyGroupsHeader)}),
		serve(setting{flag: "proxy-roles", env: "JETWATCH_PROXY_ROLES", usage: "groups to roles for proxy sign-in, e.g. sre=admin,payments=operator,*=viewer", bind: stringSetting(&c.ProxyRoles)}),
		serve(setting{flag: "tls-cert", env: "JETWATCH_TLS_CERT", usage: "certificate file (PEM): serve HTTPS", bind: stringSetting(&c.TLSCert)}),
		serve(setting{flag: "tls-key", env: "JETWATCH_TLS_KEY", usage: "private key file (PEM) of --tls-cert", bind: stringSetting(&c.TLSKey)}),
		both(setting{flag: "hide-payloads", env: "JETWATCH_HIDE_PAYLOADS", usage: "hide dead-letter and stream message payloads from viewers (operators still see them)", bind: boolSetting(&c.HidePayloads)}),
		both(setting{flag: "redact-headers", env: "JETWATCH_REDACT_HEADERS", usage: "header names whose values are masked everywhere jetwatch shows them, comma separated (e.g. Authorization,X-Api-Key)", bind: stringSetting(&c.RedactHeaders)}),
		both(setting{flag: "redact-fields", env: "JETWATCH_REDACT_FIELDS", usage: "JSON payload fields masked everywhere jetwatch shows them, comma separated dotted paths (e.g. password,card.number)", bind: stringSetting(&c.RedactFields)}),
		both(setting{flag: "redeliver-subjects", env: "JETWATCH_REDELIVER_SUBJECTS", usage: "subjects redeliveries may go to, comma separated, wildcards allowed (e.g. orders.>,payments.*); default: any subject a user stream captures", bind: stringSetting(&c.RedeliverSubjects)}),
		both(setting{flag: "proto-descriptors", env: "JETWATCH_PROTO_DESCRIPTORS", usage: "protobuf descriptor set (protoc --descriptor_set_out=FILE --include_imports): payloads on the subjects of --proto-types are shown decoded", bind: stringSetting(&c.ProtoDescriptors)}),
		both(setting{flag: "proto-types", env: "JETWATCH_PROTO_TYPES", usage: "subjects to protobuf message types, comma separated subject=type pairs, wildcards allowed, first match wins (e.g. orders.*=shop.Order,payments.>=shop.Payment)", bind: stringSetting(&c.ProtoTypes)}),
		both(setting{flag: "trace-url", env: "JETWATCH_TRACE_URL", usage: "link trace ids of dead letters to a tracing UI; {trace_id} is replaced (e.g. http://jaeger:16686/trace/{trace_id})", bind: stringSetting(&c.TraceURL)}),
		serve(setting{flag: "journey-streams", env: "JETWATCH_JOURNEY_STREAMS", usage: "streams whose messages' metadata (never payloads) is indexed for journeys, comma separated, * for any run of characters (e.g. ORDERS,PAY*); default: none", bind: stringSetting(&c.JourneyStreams)}),
		demo(setting{flag: "journey-streams", env: "JETWATCH_JOURNEY_STREAMS", def: "ORDERS,PAYMENTS", usage: "streams whose messages' metadata (never payloads) is indexed for journeys, comma separated, * for any run of characters (e.g. ORDERS,PAY*)", bind: stringSetting(&c.JourneyStreams)}),
		serve(setting{flag: "correlate-by", env: "JETWATCH_CORRELATE_BY", usage: "correlation values journeys are keyed by besides trace ids: header:NAME or json:FIELD (top-level), each optionally led by name= (e.g. order=header:X-Order-Id,order=json:order_id)", bind: stringSetting(&c.CorrelateBy)}),
		demo(setting{flag: "correlate-by", env: "JETWATCH_CORRELATE_BY", def: "order=header:X-Order-Id,order=json:order_id", usage: "correlation values journeys are keyed by besides trace ids: header:NAME or json:FIELD (top-level), each optionally led by name=", bind: stringSetting(&c.CorrelateBy)}),
		both(setting{flag: "journey-retention", env: "JETWATCH_JOURNEY_RETENTION", def: "72h", usage: "how long journey rows are kept after their message", bind: durationSetting(&c.JourneyRetention)}),
		both(setting{flag: "journey-max-rows", env: "JETWATCH_JOURNEY_MAX_ROWS", def: "0", usage: "most journey rows kept, the oldest going first; 0: no cap", bind: intSetting(&c.JourneyMaxRows)}),

		both(setting{flag: "rules", env: "JETWATCH_RULES", usage: "alert rules file (YAML); SIGHUP or a change of the file reloads it (demo: its own rules when unset)", bind: stringSetting(&c.Rules)}),
		both(setting{flag: "alert-interval", env: "JETWATCH_ALERT_INTERVAL", def: "5s", usage: "how often alert rules are evaluated", bind: durationSetting(&c.AlertInterval)}),
		both(setting{flag: "external-url", env: "JETWATCH_EXTERNAL_URL", usage: "the dashboard's address as receivers reach it, linked from notifications (e.g. https://jetwatch.example.com)", bind: stringSetting(&c.ExternalURL)}),

		serve(setting{flag: "server", env: "NATS_URL", usage: "NATS server URLs, comma separated (default nats://127.0.0.1:4222, or the context's)", bind: stringSetting(&c.NATS.Servers)}),
		serve(setting{flag: "context", env: "NATS_CONTEXT", usage: "natscli context to read connection settings from (flags given explicitly win)", bind: stringSetting(&c.NATS.Context)}),
		serve(setting{flag: "creds", env: "NATS_CREDS", usage: "user credentials file (JWT + seed)", bind: stringSetting(&c.NATS.Creds)}),
		serve(setting{flag: "nkey", env: "NATS_NKEY", usage: "nkey seed file", bind: stringSetting(&c.NATS.NKey)}),
		serve(setting{flag: "user", env: "NATS_USER", usage: "user name", bind: stringSetting(&c.NATS.User)}),
		serve(setting{flag: "password", env: "NATS_PASSWORD", usage: "password (prefer the environment variable: flags show in ps)", bind: stringSetting(&c.NATS.Password)}),
		serve(setting{flag: "token", env: "NATS_TOKEN", usage: "authentication token (prefer the environment variable)", bind: stringSetting(&c.NATS.Token)}),
		serve(setting{flag: "tlscert", env: "NATS_CERT", usage: "TLS client certificate file", bind: stringSetting(&c.NATS.TLSCert)}),
		serve(setting{flag: "tlskey", env: "NATS_KEY", usage: "TLS client key file", bind: stringSetting(&c.NATS.TLSKey)}),
		serve(setting{flag: "tlsca", env: "NATS_CA", usage: "TLS CA file to verify the server", bind: stringSetting(&c.NATS.TLSCA)}),
		serve(setting{flag: "system-context", env: "JETWATCH_SYSTEM_CONTEXT", usage: "natscli context of a system-account user, for per-server JetStream health", bind: stringSetting(&c.System.Context)}),
		serve(setting{flag: "system-creds", env: "JETWATCH_SYSTEM_CREDS", usage: "credentials file of a system-account user, for per-server JetStream health", bind: stringSetting(&c.System.Creds)}),
		serve(setting{flag: "system-user", env: "JETWATCH_SYSTEM_USER", usage: "system-account user name, for per-server JetStream health", bind: stringSetting(&c.System.User)}),
		serve(setting{flag: "system-password", env: "JETWATCH_SYSTEM_PASSWORD", usage: "system-account password", bind: stringSetting(&c.System.Password)}),
		serve(setting{flag: "account", env: "JETWATCH_ACCOUNTS", usage: "capture and act on dead letters of another account too: NAME=CONTEXT, the account's label (letters, digits, - and _) and the natscli context of a user in it; repeat the flag for more, or give the variable comma separated (B=ctxB,C=ctxC)", bind: accountsSetting(&c.accountArgs)}),
		serve(setting{flag: "all-accounts", env: "JETWATCH_ALL_ACCOUNTS", usage: "also sample every other account's streams and consumers through the system-account user (JSZ), read-only on the overview, their stream and consumer pages, the accounts page and /metrics", bind: boolSetting(&c.AllAccounts)}),

		demo(setting{flag: "nats-port", env: "JETWATCH_DEMO_NATS_PORT", def: "4222", usage: "port of the embedded NATS server (0 picks a free one)", bind: intSetting(&c.NATSPort)}),
	}
}

// parseFlags parses args for the named subcommand, taking defaults from env.
func parseFlags(cmd string, args []string, env func(string) string, out io.Writer) (*config, error) {
	c, rest, err := parseFlagsArgs(cmd, args, env, out, nil)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", rest)
	}
	return c, nil
}

// parseFlagsArgs is parseFlags for commands that take arguments after the
// flags, and flags of their own (bound by extra).
func parseFlagsArgs(cmd string, args []string, env func(string) string, out io.Writer, extra func(*flag.FlagSet)) (*config, []string, error) {
	c := &config{}
	fs := flag.NewFlagSet("jetwatch "+cmd, flag.ContinueOnError)
	fs.SetOutput(out)
	for _, s := range settings(c) {
		// reindex takes serve's settings: it talks to the same NATS.
		if (cmd == "demo" && !s.demo) || (cmd != "demo" && !s.serve) {
			continue
		}
		def := s.def
		if v := env(s.env); v != "" {
			def = v
		}
		usage := s.usage + " (env " + s.env + ")"
		if err := s.bind(fs, s.flag, def, usage); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", s.env, err)
		}
	}
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	var err error
	if c.Accounts, err = parseAccounts(&c.accountArgs); err != nil {
		return nil, nil, err
	}
	c.Env = env
	c.NATS.Name = "jetwatch"
	c.System.Name = "jetwatch-system"
	// The system user reaches the same servers the same way, unless a
	// system context says otherwise.
	if c.System.Context == "" {
		c.System.Servers = c.NATS.Servers
		c.System.TLSCert, c.System.TLSKey, c.System.TLSCA = c.NATS.TLSCert, c.NATS.TLSKey, c.NATS.TLSCA
	}
	return c, fs.Args(), nil
}

// captureStreams is --capture-streams, checked.
func (c *config) captureStreams() (collector.StreamPatterns, error) {
	p, err := collector.ParseStreamPatterns(splitList(c.CaptureStreams))
	if err != nil {
		return p, fmt.Errorf("--capture-streams: %w", err)
	}
	return p, nil
}

// protoTypes is --proto-descriptors and --proto-types, loaded; nil
// when neither is given.
func (c *config) protoTypes() (views.ProtoDecoder, error) {
	switch {
	case c.ProtoDescriptors == "" && c.ProtoTypes == "":
		return nil, nil
	case c.ProtoDescriptors == "":
		return nil, errors.New("--proto-types needs --proto-descriptors FILE, the descriptor set (protoc --descriptor_set_out=FILE --include_imports)")
	case c.ProtoTypes == "":
		return nil, errors.New("--proto-descriptors needs --proto-types, which subjects carry which message type (e.g. orders.*=shop.Order)")
	}
	t, err := prototypes.Load(c.ProtoDescriptors, c.ProtoTypes)
	if err != nil {
		return nil, fmt.Errorf("--proto-descriptors/--proto-types: %w", err)
	}
	return t, nil
}

// journeyStreams is --journey-streams, checked; nil when journeys are off.
func (c *config) journeyStreams() (func(string) bool, error) {
	list := splitList(c.JourneyStreams)
	if len(list) == 0 {
		return nil, nil
	}
	p, err := collector.ParseStreamPatterns(list)
	if err != nil {
		return nil, fmt.Errorf("--journey-streams: %w", err)
	}
	return p.Match, nil
}

// correlations is --correlate-by, checked.
func (c *config) correlations() (journey.Correlations, error) {
	cs, err := journey.ParseCorrelations(c.CorrelateBy)
	if err != nil {
		return nil, fmt.Errorf("--correlate-by: %w", err)
	}
	if c.JourneyRetention < 0 || c.JourneyMaxRows < 0 {
		return nil, errors.New("--journey-retention and --journey-max-rows must not be negative")
	}
	return cs, nil
}

// systemConfigured says whether a separate system-account connection was asked for.
func (c *config) systemConfigured() bool {
	return c.System.Context != "" || c.System.Creds != "" || c.System.User != ""
}
