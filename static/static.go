package static

import "embed"

// Files are the embedded assets, by file name. web serves each under a URL
// holding a hash of its content.
//
//go:embed app.css app.js favicon.svg
var Files embed.FS
