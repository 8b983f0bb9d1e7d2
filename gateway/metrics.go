package gateway

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are one gateway's Prometheus series. Every series carries the
// tenant and service labels, so that one Prometheus scraping every gateway
// sums them per tenant (metering) or per service.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec   // tenant, service, method, code
	bytes     *prometheus.CounterVec   // tenant, service, direction (in|out)
	denials   *prometheus.CounterVec   // tenant, service, reason
	throttled *prometheus.CounterVec   // tenant, service, reason
	latency   *prometheus.HistogramVec // tenant, service
	conns     *prometheus.GaugeVec     // tenant, service
}

// Reasons of denials and throttling (label values, and log fields).
const (
	reasonMethod    = "method"          // the mode does not allow the method
	reasonOverride  = "method-override" // a header or query parameter that would change the method
	reasonUpgrade   = "upgrade"         // CONNECT or an Upgrade request
	reasonDirection = "direction"       // tcp: bytes against the mode's direction
	reasonRate      = "rate"            // requests or connections per second
	reasonConns     = "connections"     // concurrent connections
	reasonBody      = "body-size"       // request body over the limit
)

func newMetrics(tenant, service string) *metrics {
	c := prometheus.Labels{"tenant": tenant, "service": service}
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_gateway_requests_total", ConstLabels: c,
			Help: "Requests (http) or connections (tcp) handled, by method and status code (tcp: method \"tcp\", code \"\").",
		}, []string{"method", "code"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_gateway_bytes_total", ConstLabels: c,
			Help: "Bytes carried: in = client to service, out = service to client (bodies for http).",
		}, []string{"direction"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_gateway_denials_total", ConstLabels: c,
			Help: "Requests or connections refused because the granted mode does not allow them.",
		}, []string{"reason"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_gateway_throttled_total", ConstLabels: c,
			Help: "Requests or connections refused by a per-tenant limit (rate, connections, body size).",
		}, []string{"reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "moat_gateway_request_duration_seconds", ConstLabels: c,
			Help:    "Time from a request's arrival to the end of its response (http), or a connection's lifetime (tcp).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, nil),
		conns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "moat_gateway_connections", ConstLabels: c,
			Help: "Client connections open now.",
		}, nil),
	}
	m.reg.MustRegister(m.requests, m.bytes, m.denials, m.throttled, m.latency, m.conns)
	// Pre-create the series a dashboard alerts on, so they read 0, not absent.
	for _, r := range []string{reasonMethod, reasonOverride, reasonUpgrade, reasonDirection} {
		m.denials.WithLabelValues(r)
	}
	for _, r := range []string{reasonRate, reasonConns, reasonBody} {
		m.throttled.WithLabelValues(r)
	}
	m.bytes.WithLabelValues("in")
	m.bytes.WithLabelValues("out")
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
