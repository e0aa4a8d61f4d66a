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
	hash string
	body []byte
}

func newAssets() (*assets, error) {
	a := &assets{files: map[string]asset{}}
	for _, name := range []string{"app.css", "app.js", "favicon.svg"} {
		body, err := fs.ReadFile(static.Files, name)
		if err != nil {
			return nil, fmt.Errorf("static asset %s: %w", name, err)
		}
		sum := sha256.Sum256(body)
		a.files[name] = asset{hash: hex.EncodeToString(sum[:8]), body: body}
	}
	return a, nil
}

// url is the hashed URL of an asset.
func (a *assets) url(name string) string {
	return "/static/" + a.files[name].hash + "/" + name
}

func (a *assets) serve(c echo.Context) error {
	f, ok := a.files[c.Param("name")]
	if !ok || f.hash != c.Param("hash") {
		return echo.NewHTTPError(http.StatusNotFound, "no such asset")
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	return c.Blob(http.StatusOK, mime.TypeByExtension(path.Ext(c.Param("name")))+"; charset=utf-8", f.body)
}
