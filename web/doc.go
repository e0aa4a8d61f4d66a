// Package web serves jetwatch over HTTP with Echo: the server-rendered
// dashboard pages (templ components from views) and their live-refresh
// fragments, the JSON API under /api/v1, /metrics, /healthz and /readyz, and
// the embedded static assets under content-hashed URLs.
//
// Handlers build view models from the Index interface declared here and
// never talk to NATS; the connection and sampler state arrive as functions
// in Config. Every error becomes an answer in one place (handleError), which
// logs internal failures once and never shows their text to the client.
package web
