package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// list is the envelope of every list answer, so lists can gain paging
// fields without breaking clients.
type list[T any] struct {
	Items []T `json:"items"`
}

// apiJSON answers 200 with v; answers reflect the latest sample, so no
// cache may keep them.
func apiJSON(c echo.Context, v any) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, v)
}

// nonNil makes an empty list marshal as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
