// Package web serves jetwatch over HTTP with Echo: the server-rendered
// dashboard pages (templ components from views), their live-refresh
// fragments, the JSON API under /api/v1, /metrics and the probes.
//
// It reads the index through the small Index interface it declares and never
// talks to NATS itself.
package web
