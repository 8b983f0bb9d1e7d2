package watch

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the watcher's Prometheus metrics, on their own registry (so
// tests can make as many watchers as they like). docs/WATCH.md lists every
// one; TestDocsListEveryMetric keeps it so.
type Metrics struct {
	Registry        *prometheus.Registry
	Reconciles      *prometheus.CounterVec
	Duration        *prometheus.HistogramVec
	Operations      *prometheus.CounterVec
	Drift           prometheus.Counter
	Invalid         prometheus.Counter
	Refused         prometheus.Counter
	Webhooks        *prometheus.CounterVec
	Triggers        *prometheus.CounterVec
	LastSuccess     prometheus.Gauge
	RevisionInfo    *prometheus.GaugeVec
	Ready           prometheus.Gauge
	EngineReconnect prometheus.Counter
}

// NewMetrics registers the metrics (and the Go and process collectors).
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		Reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "moat_reconciles_total",
			Help: "Reconcile rounds by result: converged, applied, invalid, refused, error."}, []string{"result"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "moat_reconcile_duration_seconds",
			Help: "Duration of reconcile rounds by result.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"result"}),
		Operations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "moat_plan_operations_total",
			Help: "Plan operations applied, by action and outcome."}, []string{"action", "outcome"}),
		Drift: prometheus.NewCounter(prometheus.CounterOpts{Name: "moat_drift_operations_total",
			Help: "Operations that reverted drift: applied while the revision was unchanged since the last successful round."}),
		Invalid: prometheus.NewCounter(prometheus.CounterOpts{Name: "moat_invalid_revisions_total",
			Help: "Revisions refused because they do not validate (each counted once)."}),
		Refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "moat_refused_revisions_total",
			Help: "Revisions refused by the guard, trust or the force-push check (each counted once)."}),
		Webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "moat_webhook_requests_total",
			Help: "Webhook requests by outcome: accepted, unauthorized, too_large, bad_method, disabled."}, []string{"outcome"}),
		Triggers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "moat_triggers_total",
			Help: "Triggers by kind: start, poll, source, webhook, event, resync, retry."}, []string{"kind"}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "moat_last_success_timestamp_seconds",
			Help: "Unix time of the last round that converged."}),
		RevisionInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "moat_revision_info",
			Help: "1 for the revision in force (state=applied) and the newest seen (state=seen)."}, []string{"state", "revision"}),
		Ready: prometheus.NewGauge(prometheus.GaugeOpts{Name: "moat_ready",
			Help: "1 when /readyz answers 200."}),
		EngineReconnect: prometheus.NewCounter(prometheus.CounterOpts{Name: "moat_event_stream_reconnects_total",
			Help: "Times the engine event stream ended and was opened again."}),
	}
	r.MustRegister(m.Reconciles, m.Duration, m.Operations, m.Drift, m.Invalid, m.Refused, m.Webhooks,
		m.Triggers, m.LastSuccess, m.RevisionInfo, m.Ready, m.EngineReconnect,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
