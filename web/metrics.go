package web

import (
	"bytes"
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

// metricsWithSampled serves the sampled series the collector keeps ready,
// followed by the Gatherer's metrics, always in the text format; gzipped
// (one gzip member) when the scraper accepts it, as Prometheus does.
func (s *Server) metricsWithSampled(c echo.Context) error {
	families, err := s.cfg.Gatherer.Gather()
	if err != nil {
		// Like promhttp.ContinueOnError: serve what was gathered.
		s.logger.Warn("gathering metrics", "err", err)
	}
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	var gathered bytes.Buffer
	enc := expfmt.NewEncoder(&gathered, format)
	for _, mf := range families {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("encode %s: %w", mf.GetName(), err)
		}
	}
	w := c.Response()
	w.Header().Set("Content-Type", string(format))
	w.Header().Set("Cache-Control", "no-store")
	gz := acceptsGzip(c.Request().Header.Get("Accept-Encoding"))
	if gz {
		w.Header().Set("Content-Encoding", "gzip")
	}
	w.Header().Add("Vary", "Accept-Encoding")
	w.WriteHeader(http.StatusOK)
	return s.cfg.SampledMetrics(w, gz, gathered.Bytes())
}

// acceptsGzip says whether an Accept-Encoding header accepts gzip: listed,
// and not with q=0.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

// slogPrinter lets promhttp report gathering errors through our logger.
type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) {
	p.s.logger.Warn("serving metrics", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}
