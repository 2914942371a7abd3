package daemon

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/backbone-etl/backbone/internal/engine"
)

// metrics are the daemon's Prometheus metrics, in a registry of its own (no
// global state: tests run several daemons in one process).
type metrics struct {
	reg *prometheus.Registry

	read, written, filtered *prometheus.CounterVec // pipeline
	rejected                *prometheus.CounterVec // pipeline, step
	stepIn, stepOut         *prometheus.CounterVec // pipeline, step
	stepFiltered            *prometheus.CounterVec // pipeline, step
	runs                    *prometheus.CounterVec // pipeline, status, trigger
	duration                *prometheus.HistogramVec
	lastSuccess             *prometheus.GaugeVec
	freshness               *prometheus.GaugeVec
	freshnessSLO            *prometheus.GaugeVec
	cacheHits, cacheMisses  *prometheus.CounterVec // pipeline, lookup
	cacheRatio              *prometheus.GaugeVec
	sinkLatency             *prometheus.HistogramVec // pipeline, op
	inFlight                prometheus.Gauge
	alertsSent, alertsFail  prometheus.GaugeFunc
	reloads                 *prometheus.CounterVec // outcome
}

func newMetrics(alertStats func() (sent, failed int64)) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := promauto{m.reg}
	m.read = f.counter("backbone_records_read_total", "Records read from the source.", "pipeline")
	m.written = f.counter("backbone_records_written_total", "Records written to the sink.", "pipeline")
	m.filtered = f.counter("backbone_records_filtered_total", "Records dropped by a filter.", "pipeline")
	m.rejected = f.counter("backbone_records_rejected_total", "Records rejected, by the step that rejected them.", "pipeline", "step")
	m.stepIn = f.counter("backbone_step_records_in_total", "Records into a step.", "pipeline", "step")
	m.stepOut = f.counter("backbone_step_records_out_total", "Records out of a step.", "pipeline", "step")
	m.stepFiltered = f.counter("backbone_step_records_filtered_total", "Records a step filtered.", "pipeline", "step")
	m.runs = f.counter("backbone_runs_total", "Runs finished, by status and trigger.", "pipeline", "status", "trigger")
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "backbone_run_duration_seconds",
		Help: "Duration of finished runs.", Buckets: prometheus.ExponentialBuckets(0.05, 2.5, 14)}, []string{"pipeline", "status"})
	m.lastSuccess = f.gauge("backbone_last_success_timestamp_seconds", "Unix time of the last successful run.", "pipeline")
	m.freshness = f.gauge("backbone_freshness_seconds", "Seconds since the last successful run (or since the daemon started, when none).", "pipeline")
	m.freshnessSLO = f.gauge("backbone_freshness_slo_seconds", "The pipeline's freshness objective.", "pipeline")
	m.cacheHits = f.counter("backbone_lookup_cache_hits_total", "Lookups answered by the cache.", "pipeline", "lookup")
	m.cacheMisses = f.counter("backbone_lookup_cache_misses_total", "Lookups the cache could not answer.", "pipeline", "lookup")
	m.cacheRatio = f.gauge("backbone_lookup_cache_hit_ratio", "Cache hit ratio of the last run's lookups.", "pipeline", "lookup")
	m.sinkLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "backbone_sink_latency_seconds",
		Help: "Time of sink writes and commits.", Buckets: prometheus.ExponentialBuckets(0.0005, 3, 12)}, []string{"pipeline", "op"})
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{Name: "backbone_runs_in_flight", Help: "Runs in flight."})
	m.reloads = f.counter("backbone_reloads_total", "Pipeline files loaded, by outcome (applied, refused, removed).", "outcome")
	m.alertsSent = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "backbone_alerts_sent", Help: "Alert messages delivered."},
		func() float64 { s, _ := alertStats(); return float64(s) })
	m.alertsFail = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "backbone_alerts_failed", Help: "Alert messages given up on."},
		func() float64 { _, f := alertStats(); return float64(f) })
	m.reg.MustRegister(m.duration, m.sinkLatency, m.inFlight, m.alertsSent, m.alertsFail,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

type promauto struct{ reg *prometheus.Registry }

func (p promauto) counter(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	p.reg.MustRegister(c)
	return c
}

func (p promauto) gauge(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	p.reg.MustRegister(g)
	return g
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// progress adds what a run did since its last report.
func (m *metrics) progress(pipeline string, d engine.Progress) {
	m.read.WithLabelValues(pipeline).Add(float64(d.Read))
	m.written.WithLabelValues(pipeline).Add(float64(d.Written))
	m.filtered.WithLabelValues(pipeline).Add(float64(d.Filtered))
}

// finished records a finished run.
func (m *metrics) finished(pipeline, trigger string, res *engine.Result) {
	if res == nil {
		return
	}
	r := res.Run
	m.runs.WithLabelValues(pipeline, r.Status, trigger).Inc()
	m.duration.WithLabelValues(pipeline, r.Status).Observe(res.Duration.Seconds())
	for step, n := range res.RejectsByStep {
		m.rejected.WithLabelValues(pipeline, step).Add(float64(n))
	}
	for _, sc := range res.Steps {
		m.stepIn.WithLabelValues(pipeline, sc.Step).Add(float64(sc.In))
		m.stepOut.WithLabelValues(pipeline, sc.Step).Add(float64(sc.Out))
		m.stepFiltered.WithLabelValues(pipeline, sc.Step).Add(float64(sc.Filtered))
	}
	for name, hm := range res.LookupCache {
		m.cacheHits.WithLabelValues(pipeline, name).Add(float64(hm[0]))
		m.cacheMisses.WithLabelValues(pipeline, name).Add(float64(hm[1]))
		if total := hm[0] + hm[1]; total > 0 {
			m.cacheRatio.WithLabelValues(pipeline, name).Set(float64(hm[0]) / float64(total))
		}
	}
	if r.Status == "succeeded" {
		m.lastSuccess.WithLabelValues(pipeline).Set(float64(r.End.UnixNano()) / 1e9)
	}
}

func (m *metrics) observe(pipeline string) func(op string, d time.Duration) {
	return func(op string, d time.Duration) {
		m.sinkLatency.WithLabelValues(pipeline, op).Observe(d.Seconds())
	}
}

// forget drops the series of a removed pipeline.
func (m *metrics) forget(pipeline string) {
	l := prometheus.Labels{"pipeline": pipeline}
	for _, v := range []*prometheus.GaugeVec{m.lastSuccess, m.freshness, m.freshnessSLO, m.cacheRatio} {
		v.DeletePartialMatch(l)
	}
}
