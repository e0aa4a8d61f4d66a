package web

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/static"
)

// assets serves the embedded static files under content-hashed URLs, so
// browsers may cache them forever and a new build is fetched at once.
type assets struct {
	files map[string]asset // by name
}

type asset struct {
	hash        string
	contentType string
	body        []byte
}

// newAssets hashes every embedded file once, at start.
func newAssets() (*assets, error) {
	a := &assets{files: map[string]asset{}}
	err := fs.WalkDir(static.Files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(static.Files, name)
		if err != nil {
			return err
		}
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = http.DetectContentType(body)
		}
		sum := sha256.Sum256(body)
		a.files[name] = asset{hash: hex.EncodeToString(sum[:8]), contentType: ct, body: body}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("static assets: %w", err)
	}
	return a, nil
}

// url is the hashed URL of an asset; empty for an unknown name, so a
// typo shows up as a missing stylesheet in tests rather than a panic.
func (a *assets) url(name string) string {
	f, ok := a.files[name]
	if !ok {
		return ""
	}
	return "/static/" + f.hash + "/" + name
}

// serve answers GET /static/:hash/:name. Only the current hash is served:
// an old hash would otherwise be cached forever with new content.
func (a *assets) serve(c echo.Context) error {
	f, ok := a.files[c.Param("name")]
	if !ok || f.hash != c.Param("hash") {
		return echo.NewHTTPError(http.StatusNotFound, "no such asset")
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	return c.Blob(http.StatusOK, f.contentType, f.body)
}
