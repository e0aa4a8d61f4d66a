package web

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

func TestMetricsServesTheGatherer(t *testing.T) {
	t.Parallel()
	srv, b := setup(t)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_gauge", Help: "a test gauge"})
	g.Set(42)
	b.reg.MustRegister(g)

	res, body := get(t, srv, "/metrics")
	require.Equal(t, http.StatusOK, res.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	require.Len(t, families, 1, "only what the registry holds: no global registry")
	require.Equal(t, 42.0, families["test_gauge"].GetMetric()[0].GetGauge().GetValue())
	require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
}

func TestMetricsAppendSampledGaugesPlainAndGzipped(t *testing.T) {
	t.Parallel()
	sampled := "# HELP jetstream_consumer_num_pending p\n# TYPE jetstream_consumer_num_pending gauge\njetstream_consumer_num_pending{consumer_name=\"c\"} 5\n"
	srv, b := setup(t, func(c *Config) {
		c.SampledMetrics = func(w io.Writer, gz bool, extra []byte) error {
			text := sampled + string(extra)
			if !gz {
				_, err := io.WriteString(w, text)
				return err
			}
			zw := gzip.NewWriter(w)
			if _, err := io.WriteString(zw, text); err != nil {
				return err
			}
			return zw.Close()
		}
	})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_gauge", Help: "a test gauge"})
	g.Set(7)
	b.reg.MustRegister(g)
	for accept, gz := range map[string]bool{"": false, "gzip": true, "br, gzip;q=0.8": true, "gzip;q=0": false, "identity": false} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code)
		var body io.Reader = rec.Body
		if gz {
			require.Equal(t, "gzip", rec.Header().Get("Content-Encoding"), accept)
			zr, err := gzip.NewReader(rec.Body)
			require.NoError(t, err)
			body = zr
		} else {
			require.Empty(t, rec.Header().Get("Content-Encoding"), accept)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(body)
		require.NoError(t, err, "Accept-Encoding %q", accept)
		require.Equal(t, 7.0, families["test_gauge"].GetMetric()[0].GetGauge().GetValue())
		require.Equal(t, 5.0, families["jetstream_consumer_num_pending"].GetMetric()[0].GetGauge().GetValue())
	}
}
