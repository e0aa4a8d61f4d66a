package web

import (
	"compress/gzip"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// metrics serves GET /metrics. Without Config.SampledMetrics it is
// promhttp's handler for the Gatherer, content negotiation included.
func (s *Server) metrics() echo.HandlerFunc {
	if s.cfg.SampledMetrics == nil {
		h := promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{
			ErrorLog:      slogPrinter{s},
			ErrorHandling: promhttp.ContinueOnError,
		})
		return echo.WrapHandler(h)
	}
	return s.metricsWithSampled
}

// metricsWithSampled serves the Gatherer's metrics followed by the sampled
// gauges the collector keeps pre-rendered in the text format, so it always
// answers in the text format. With gzip the answer is two gzip members,
// which every gzip reader, Prometheus included, reads as one stream.
func (s *Server) metricsWithSampled(c echo.Context) error {
	families, err := s.cfg.Gatherer.Gather()
	if err != nil {
		// Like promhttp.ContinueOnError: serve what was gathered.
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
	return s.cfg.SampledMetrics(w, gz)
}

// slogPrinter lets promhttp report gathering errors through our logger.
type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) {
	p.s.logger.Warn("serving metrics", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}
