package web

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
)

// list is the envelope of every list answer.
type list[T any] struct {
	Items []T `json:"items"`
}

func apiJSON(c echo.Context, v any) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, v)
}

func (s *Server) apiStreamList(c echo.Context) error {
	streams, err := s.cfg.Index.Streams(c.Request().Context())
	if err != nil {
		return err
	}
	return apiJSON(c, list[store.Stream]{Items: nonNil(streams)})
}

func (s *Server) apiStreamShow(c echo.Context) error {
	st, err := s.cfg.Index.Stream(c.Request().Context(), c.Param("stream"))
	if errors.Is(err, store.ErrNotFound) {
		return notFoundError{"unknown stream " + c.Param("stream")}
	}
	if err != nil {
		return err
	}
	return apiJSON(c, st)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
