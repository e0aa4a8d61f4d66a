// Package static holds the hand-written CSS and JavaScript the dashboard
// serves, embedded into the binary. It must stay small and dependency-free:
// pages work without the JavaScript, which only refreshes live regions.
package static

import "embed"

// Files are the embedded assets.
//
//go:embed app.css app.js favicon.svg
var Files embed.FS
