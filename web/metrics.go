package web

import (
	"compress/gzip"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/common/expfmt"
)

// metrics serves the registry's metrics followed by the sampled gauges,
// which the collector keeps pre-rendered (see Config.SampledMetrics). With
// gzip, the response is two gzip members, which every gzip reader and
// Prometheus accept as one stream.
func (s *Server) metrics(c echo.Context) error {
	families, err := s.cfg.Gatherer.Gather()
	if err != nil {
		s.logger.Warn("gathering metrics", "err", err)
	}
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	w := c.Response()
	w.Header().Set("Content-Type", string(format))
	w.Header().Set("Cache-Control", "no-store")
	gz := strings.Contains(c.Request().Header.Get("Accept-Encoding"), "gzip")
	if gz {
		w.Header().Set("Content-Encoding", "gzip")
	}
	w.WriteHeader(http.StatusOK)
	if gz {
		zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		enc := expfmt.NewEncoder(zw, format)
		for _, mf := range families {
			if err := enc.Encode(mf); err != nil {
				return err
			}
		}
		if err := zw.Close(); err != nil {
			return err
		}
	} else {
		enc := expfmt.NewEncoder(w, format)
		for _, mf := range families {
			if err := enc.Encode(mf); err != nil {
				return err
			}
		}
	}
	if s.cfg.SampledMetrics != nil {
		return s.cfg.SampledMetrics(w, gz)
	}
	return nil
}
