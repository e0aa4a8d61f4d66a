package web

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/jetwatch/jetwatch/dlq"
)

// deadLetterFilter reads the filter from the query string. since and until
// take RFC 3339 times or a duration back from now ("1h", "7d").
func (s *Server) deadLetterFilter(c echo.Context) (dlq.Filter, error) {
	f := dlq.Filter{
		Stream: strings.TrimSpace(c.QueryParam("stream")), Consumer: strings.TrimSpace(c.QueryParam("consumer")),
		Subject: strings.TrimSpace(c.QueryParam("subject")), Reason: c.QueryParam("reason"),
		Status: c.QueryParam("status"), Q: strings.TrimSpace(c.QueryParam("q")),
		PayloadsHidden: s.payloadsHidden(c),
	}
	var err error
	if f.Since, err = s.parseTime(c.QueryParam("since")); err != nil {
		return f, fmt.Errorf("%w: since: %v", dlq.ErrBadFilter, err)
	}
	if f.Until, err = s.parseTime(c.QueryParam("until")); err != nil {
		return f, fmt.Errorf("%w: until: %v", dlq.ErrBadFilter, err)
	}
	return f, f.Validate()
}

func (s *Server) parseTime(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02T15:04", v); err == nil {
		return t.UTC(), nil
	}
	if d, err := parseWindow(v); err == nil {
		return s.cfg.Now().Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration like 1h or 7d", v)
}

func parseID(c echo.Context) (uint64, error) {
	id, err := strconv.ParseUint(c.Param("id"), 10, 64)
	if err != nil || id == 0 {
		return 0, notFoundError{"no dead letter " + c.Param("id")}
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
		return 0, fmt.Errorf("%w: limit %q: use 1 to 500", dlq.ErrBadFilter, v)
	}
	return n, nil
}
