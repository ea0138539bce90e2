package cluster

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are one node's Prometheus metrics, in a registry of its own so
// several nodes in one process (tests, the demo) do not collide. Labels are
// the database name; the node is whoever is scraped.
type metrics struct {
	registry *prometheus.Registry

	proposals       *prometheus.CounterVec
	proposalRetries *prometheus.CounterVec
	proposalErrors  *prometheus.CounterVec
	proposeSeconds  *prometheus.HistogramVec
	barrierSeconds  *prometheus.HistogramVec
	applied         *prometheus.CounterVec
	applySeconds    *prometheus.HistogramVec
	conflicts       *prometheus.CounterVec
	snapshots       *prometheus.CounterVec
	snapshotBytes   *prometheus.CounterVec
	sleeps          *prometheus.CounterVec

	initialised sync.Map // database name -> struct{}: its series exist (initDB)
}

func newMetrics() *metrics {
	latency := prometheus.ExponentialBuckets(0.0001, 2, 16) // 100us .. 3.3s
	m := &metrics{
		registry: prometheus.NewRegistry(),
		proposals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rsqlite_proposals_total", Help: "Writes and transaction commits proposed through raft by this node.",
		}, []string{"db"}),
		proposalRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rsqlite_proposal_retries_total", Help: "Proposals and read barriers retried (no leader, leader change, timeout).",
		}, []string{"db"}),
		proposalErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rsqlite_proposal_errors_total", Help: "Proposals that failed (deadline passed, quorum lost, node closed).",
		}, []string{"db"}),
		proposeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rsqlite_propose_seconds", Help: "Time from proposal to the applied result, retries included.", Buckets: latency,
		}, []string{"db"}),
		barrierSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rsqlite_read_barrier_seconds", Help: "Time linearizable reads wait for their ReadIndex barrier.", Buckets: latency,
		}, []string{"db"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rsqlite_applied_entries_total", Help: "Raft entries applied to the local SQLite file.",
		}, []string{"db"}),
		applySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rsqlite_apply_batch_seconds", Help: "Time to apply one batch of entries in one SQLite transaction.", Buckets: latency,
		}, []string{"db"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rsqlite_transaction_conflicts_total", Help: "Transaction commits refused because the database changed after their snapshot.",
		}, []string{"db"}),
		snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rsqlite_snapshots_total", Help: "Database snapshots streamed to (sent) or restored from (received) other nodes.",
		}, []string{"db", "direction"}),
		snapshotBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rsqlite_snapshot_bytes_total", Help: "Bytes of database snapshots sent or received.",
		}, []string{"db", "direction"}),
		sleeps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rsqlite_db_sleeps_total", Help: "Times this node stopped a database's replica because no member had used it for the hibernate time.",
		}, []string{"db"}),
	}
	m.registry.MustRegister(m.proposals, m.proposalRetries, m.proposalErrors, m.proposeSeconds, m.barrierSeconds,
		m.applied, m.applySeconds, m.conflicts, m.snapshots, m.snapshotBytes, m.sleeps,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// initDB creates db's counters at 0, so that dashboards show them before
// the first retry, conflict or snapshot, and rate() and increase() count
// that first event (a series that appears at 1 hides it). Called when a
// replica starts and on each scrape; cheap after the first call for db.
func (m *metrics) initDB(db string) {
	if _, done := m.initialised.LoadOrStore(db, struct{}{}); done {
		return
	}
	for _, c := range []*prometheus.CounterVec{m.proposals, m.proposalRetries, m.proposalErrors, m.applied, m.conflicts, m.sleeps} {
		c.WithLabelValues(db)
	}
	for _, dir := range []string{"sent", "received"} {
		m.snapshots.WithLabelValues(db, dir)
		m.snapshotBytes.WithLabelValues(db, dir)
	}
}

// metricsHandler serves the node's registry, creating the series of every
// database in the catalog first (initDB): one whose replica has not started
// on this node (asleep since before the node started) has them too.
func (n *Node) metricsHandler() http.Handler {
	h := promhttp.HandlerFor(n.metrics.registry, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, name := range n.Databases() {
			n.metrics.initDB(name)
		}
		h.ServeHTTP(w, r)
	})
}

// Registry is the node's Prometheus registry, for embedding applications
// that serve metrics themselves. There a database's counters exist once its
// replica has started on this node; /metrics creates them as soon as the
// catalog lists the database.
func (n *Node) Registry() *prometheus.Registry { return n.metrics.registry }

// smObserver feeds one database's state machine events into the metrics.
type smObserver struct {
	m       *metrics
	db      string
	applied func() // an apply is activity: see hibernate.go
}

func (o smObserver) Applied(entries int, d time.Duration) {
	o.applied()
	o.m.applied.WithLabelValues(o.db).Add(float64(entries))
	o.m.applySeconds.WithLabelValues(o.db).Observe(d.Seconds())
}

func (o smObserver) Conflict() { o.m.conflicts.WithLabelValues(o.db).Inc() }

func (o smObserver) SnapshotSent(bytes int64) {
	o.m.snapshots.WithLabelValues(o.db, "sent").Inc()
	o.m.snapshotBytes.WithLabelValues(o.db, "sent").Add(float64(bytes))
}

func (o smObserver) SnapshotReceived(bytes int64) {
	o.m.snapshots.WithLabelValues(o.db, "received").Inc()
	o.m.snapshotBytes.WithLabelValues(o.db, "received").Add(float64(bytes))
}
