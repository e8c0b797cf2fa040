package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/imagegate/imagegate/internal/rollout"
)

// Metrics are the server's Prometheus metrics.
type Metrics struct {
	requests       *prometheus.CounterVec
	resolves       *prometheus.CounterVec
	eventsReceived prometheus.Counter
	eventsIngested prometheus.Counter
	eventBatches   *prometheus.CounterVec
	handler        http.Handler
}

func newMetrics(reg *prometheus.Registry, svc Service, ctl Controller) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegate_http_requests_total", Help: "API requests by route and status code (resolve is counted by imagegate_resolves_total).",
		}, []string{"route", "code"}),
		resolves: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegate_resolves_total", Help: "Resolve answers by reason (pin, rollout, control, default, affinity; none for errors) and outcome (ok or an error code).",
		}, []string{"reason", "outcome"}),
		eventsReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "imagegate_events_received_total", Help: "Job events received in POST /api/v1/events, retries included.",
		}),
		eventsIngested: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "imagegate_events_ingested_total", Help: "Job events newly stored (durable before the 2xx).",
		}),
		eventBatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegate_event_batches_total", Help: "Event batches by outcome (stored, error).",
		}, []string{"outcome"}),
	}
	cs := []prometheus.Collector{m.requests, m.resolves, m.eventsReceived, m.eventsIngested, m.eventBatches,
		&rolloutStates{svc: svc}}
	if ctl != nil {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "imagegate_controller_leader", Help: "1 while this replica holds the controller lease.",
		}, func() float64 {
			if ctl.IsLeader() {
				return 1
			}
			return 0
		}), prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "imagegate_controller_ticks_total", Help: "Controller reconcile passes run by this replica.",
		}, func() float64 { return float64(ctl.Ticks()) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return m, nil
}

// NewRegistry returns a registry with the Go runtime and process
// collectors, for Options.Registry.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// rolloutStates reports how many rollouts are in each live state, asked
// of the service at scrape time so it is right on every replica.
type rolloutStates struct{ svc Service }

var rolloutsDesc = prometheus.NewDesc("imagegate_rollouts", "Rollouts by state (live states only; terminal ones grow forever).", []string{"state"}, nil)

// liveStates are counted; completed, rolled-back and superseded pile up
// and would make every scrape slower.
var liveStates = []rollout.State{rollout.StatePending, rollout.StateBaking, rollout.StatePaused, rollout.StateHalted}

func (c *rolloutStates) Describe(ch chan<- *prometheus.Desc) { ch <- rolloutsDesc }

func (c *rolloutStates) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, st := range liveStates {
		n, after := 0, ""
		for {
			items, next, err := c.svc.ListRollouts(ctx, "", []rollout.State{st}, rollout.Page{After: after, Limit: MaxPageLimit})
			if err != nil {
				ch <- prometheus.NewInvalidMetric(rolloutsDesc, fmt.Errorf("list %s rollouts: %w", st, err))
				return
			}
			n += len(items)
			if next == "" || len(items) == 0 {
				break
			}
			after = next
		}
		ch <- prometheus.MustNewConstMetric(rolloutsDesc, prometheus.GaugeValue, float64(n), string(st))
	}
}
