package web

import (
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/store"
)

// Every parameter a route reads is checked here or in store.DeadLetterFilter.Validate:
// a malformed value answers 422 saying what is allowed (404 for an id in
// the path, naming a thing that cannot exist), never 500.

// parseID reads the dead letter id in the path. Ids are DLQ stream
// sequences, stored as SQLite integers: 1 to 2^63-1.
func parseID(c echo.Context) (uint64, error) {
	id, err := strconv.ParseUint(c.Param("id"), 10, 64)
	if err != nil || id == 0 || id > math.MaxInt64 {
		return 0, notFoundError{"no dead letter " + shortQuote(c.Param("id"))}
	}
	return id, nil
}

// pageLimit reads limit, 50 by default, at most 500.
func pageLimit(c echo.Context) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 500 {
		return 0, fmt.Errorf("%w: limit %s: use 1 to 500", store.ErrBadFilter, shortQuote(v))
	}
	return n, nil
}

// beforeParam reads a keyset cursor ("before"): the id of the last item
// of the previous page, 0 when absent.
func beforeParam(c echo.Context, what string) (uint64, error) {
	v := c.QueryParam("before")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > math.MaxInt64 {
		return 0, echo.NewHTTPError(http.StatusUnprocessableEntity, "before: "+shortQuote(v)+" is not "+what+"; use the next link of the previous page")
	}
	return n, nil
}

// textParam reads a free-text query parameter of at most limit bytes.
func textParam(c echo.Context, name string, limit int) (string, error) {
	v := c.QueryParam(name)
	if len(v) > limit {
		return "", echo.NewHTTPError(http.StatusUnprocessableEntity, fmt.Sprintf("%s is %d bytes: at most %d", name, len(v), limit))
	}
	return v, nil
}

// shortQuote quotes what a client sent for an error message, cut to a
// length worth reading.
func shortQuote(s string) string {
	const n = 64
	if len(s) <= n {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:n]) + "…"
}
