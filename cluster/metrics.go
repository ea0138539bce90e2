package cluster

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
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

// Registry is the node's Prometheus registry, for embedding applications
// that serve metrics themselves.
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
