// Package static holds the hand-written CSS and JavaScript the dashboard
// serves, embedded into the binary. It must stay small and dependency-free:
// pages work without the JavaScript, which only refreshes live regions, and
// nothing here may need inline scripts or styles (the Content-Security-Policy
// forbids them).
package static
