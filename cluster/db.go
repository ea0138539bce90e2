package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/lni/dragonboat/v4"

	"github.com/rsqlite/rsqlite/statemachine"
)

// DB is the local handle of one replicated database.
type DB struct {
	node    *Node
	name    string
	shardID uint64
	path    string
	// sm is the current replica's state machine, or the last one while the
	// replica is stopped; nil before the first start. A replica that is
	// stopped and started again (hibernate.go) gets a new SM.
	sm     atomic.Pointer[statemachine.SM]
	locals statemachine.LocalTxs // outlives each SM

	txSlot  chan struct{} // one read-write transaction of this node at a time
	barrier readBarrier
	life    lifecycle
}

// cur is the current state machine, or nil before the first start.
func (db *DB) cur() *statemachine.SM { return db.sm.Load() }

// Name is the database's name in the catalog (its file name).
func (db *DB) Name() string { return db.name }

// ShardID is the database's raft group.
func (db *DB) ShardID() uint64 { return db.shardID }

// Path is the local SQLite file.
func (db *DB) Path() string { return db.path }

// Applied is the raft index of the last entry applied to the local file.
func (db *DB) Applied() uint64 {
	if s := db.cur(); s != nil {
		return s.Applied()
	}
	return 0
}

// SnapshotsReceived is how many times the local replica was restored from
// a snapshot streamed by another node since it last started.
func (db *DB) SnapshotsReceived() uint64 {
	if s := db.cur(); s != nil {
		return s.SnapshotsReceived()
	}
	return 0
}

// LastWrite is the raft index of the last entry that changed the database.
func (db *DB) LastWrite() uint64 {
	if s := db.cur(); s != nil {
		return s.LastWrite()
	}
	return 0
}

// LockTx waits until no other read-write transaction of this node is open
// on the database. Transactions of one node queue like SQLite writers wait
// for each other's locks, instead of failing each other at commit. As in
// SQLite, the wait ends after wait (the busy timeout) or at ctx's deadline,
// if sooner, with an error that wraps ErrLocked (nothing happened: retry),
// so a transaction left open cannot block the others forever; a cancelled
// ctx ends it with ctx's error. The database stays awake while the
// transaction is open.
func (db *DB) LockTx(ctx context.Context, wait time.Duration) (unlock func(), err error) {
	done, err := db.use(ctx)
	if err != nil {
		return nil, err
	}
	unlock = func() { <-db.txSlot; done() }
	select {
	case db.txSlot <- struct{}{}:
		return unlock, nil
	default:
	}
	start := time.Now()
	if d, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(d))
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case db.txSlot <- struct{}{}:
		return unlock, nil
	case <-timer.C:
	case <-ctx.Done():
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			done()
			return nil, fmt.Errorf("rsqlite: waiting for this node's other transaction on %s: %w", db.name, ctx.Err())
		}
	}
	done()
	return nil, fmt.Errorf("rsqlite: another transaction of this node on %s is still open after %v: %w",
		db.name, time.Since(start).Round(time.Millisecond), ErrLocked)
}

// RegisterLocalTx registers the abort function of a transaction running on
// this node's copy of the file; see statemachine.LocalTxs.
func (db *DB) RegisterLocalTx(abort func()) (unregister func()) {
	return db.locals.Register(abort)
}

// Propose replicates an encoded command and returns the state machine's
// encoded result. It retries until ctx's deadline when the group has no
// leader or the leader changes; the command's request ID makes a retry of a
// command that did commit return the recorded result instead of applying it
// twice.
func (db *DB) Propose(ctx context.Context, cmd []byte) ([]byte, error) {
	if len(cmd) > maxCommandSize {
		return nil, fmt.Errorf("rsqlite: command of %d bytes is larger than the %d byte limit", len(cmd), maxCommandSize)
	}
	if cause := db.diskFault(); cause != nil {
		db.node.metrics.proposalErrors.WithLabelValues(db.name).Inc()
		return nil, &DiskFaultError{Op: "write to " + db.name, Cause: cause}
	}
	done, err := db.use(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	m := db.node.metrics
	m.proposals.WithLabelValues(db.name).Inc()
	start := time.Now()
	var data []byte
	attempts := 0
	err = db.node.retry(ctx, db.shardID, "write to "+db.name, transferTime(len(cmd)), func(actx context.Context) error {
		attempts++
		r, err := db.node.nh.SyncPropose(actx, db.node.nh.GetNoOPSession(db.shardID), cmd)
		data = r.Data
		return db.stoppedMeanwhile(ctx, err)
	})
	if attempts > 1 {
		m.proposalRetries.WithLabelValues(db.name).Add(float64(attempts - 1))
	}
	if err != nil {
		m.proposalErrors.WithLabelValues(db.name).Inc()
		return nil, err
	}
	m.proposeSeconds.WithLabelValues(db.name).Observe(time.Since(start).Seconds())
	return data, nil
}

// Barrier returns once the local replica has applied every entry committed
// before the call (a raft ReadIndex): a local read after it is linearizable.
// Concurrent callers share barriers (readbarrier.go).
func (db *DB) Barrier(ctx context.Context) error {
	if cause := db.diskFault(); cause != nil {
		return &DiskFaultError{Op: "read barrier on " + db.name, Cause: cause}
	}
	if _, ok := ctx.Deadline(); !ok {
		return fmt.Errorf("rsqlite: read barrier on %s: context has no deadline", db.name)
	}
	done, err := db.use(ctx)
	if err != nil {
		return err
	}
	defer done()
	start := time.Now()
	err = db.sharedBarrier(ctx)
	if err == nil {
		db.node.metrics.barrierSeconds.WithLabelValues(db.name).Observe(time.Since(start).Seconds())
	}
	return err
}

// barrierOnce runs one ReadIndex, retried until ctx ends.
func (db *DB) barrierOnce(ctx context.Context) error {
	attempts := 0
	err := db.node.retry(ctx, db.shardID, "read barrier on "+db.name, 0, func(actx context.Context) error {
		attempts++
		_, err := db.node.nh.SyncRead(actx, db.shardID, nil)
		return db.stoppedMeanwhile(ctx, err)
	})
	if attempts > 1 {
		db.node.metrics.proposalRetries.WithLabelValues(db.name).Add(float64(attempts - 1))
	}
	return err
}

// Errors returned when an operation cannot complete. Both wrap
// context.DeadlineExceeded. A write that failed with either may or may not
// have been applied: its outcome is unknown until read back.
var (
	// ErrNoQuorum: no leader could be elected before the deadline; a
	// majority of the nodes is down or cut off.
	ErrNoQuorum = errors.New("rsqlite: no quorum: a majority of the nodes is unreachable")
	// ErrTimeout: the deadline passed while the group was working (slow disk,
	// overload, or a leader change that took longer than the deadline).
	ErrTimeout = errors.New("rsqlite: timed out")
	// ErrClosed: the node was stopped (the last *sql.DB using it closed).
	ErrClosed = errors.New("rsqlite: node is closed")
	// ErrLocked: another transaction held the database for the whole busy
	// timeout (SQLite's SQLITE_BUSY). Nothing was done; retry.
	ErrLocked = errors.New("database is locked")
)

// deadlineError wraps ErrNoQuorum or ErrTimeout with context.
type deadlineError struct {
	kind  error
	op    string
	last  error
	cause error // a disk fault of this node seen meanwhile, if any
}

func (e *deadlineError) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%v: %s: the outcome is unknown: this node cannot write to its disk: %v", e.kind, e.op, e.cause)
	}
	return fmt.Sprintf("%v: %s (last raft error: %v)", e.kind, e.op, e.last)
}

func (e *deadlineError) Is(target error) bool {
	return target == e.kind || target == context.DeadlineExceeded || e.cause != nil && target == ErrDiskFault
}

func (e *deadlineError) Unwrap() error { return e.cause }

// Timeout lets callers that test net.Error-style timeouts see one.
func (e *deadlineError) Timeout() bool { return true }

// retry runs attempt with a bounded per-attempt context until it succeeds,
// fails permanently, or ctx ends. Only errors after which the same request
// may be sent again are retried; a duplicate is harmless by construction.
// extra lengthens every attempt by the time the request's bytes need to
// reach the followers and the disk: abandoning a large entry that is still
// in flight only queues another copy of it behind the first.
func (n *Node) retry(ctx context.Context, shardID uint64, op string, extra time.Duration, attempt func(context.Context) error) error {
	if _, ok := ctx.Deadline(); !ok {
		return fmt.Errorf("rsqlite: %s: context has no deadline", op)
	}
	per := n.cfg.ProposeAttempt + extra
	maxPer := maxAttempt + extra
	pause := 2 * time.Millisecond
	var last error
	for {
		actx, cancel := context.WithTimeout(ctx, per)
		err := attempt(actx)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		if errors.Is(err, dragonboat.ErrClosed) {
			return fmt.Errorf("%w: %s", ErrClosed, op)
		}
		if errors.Is(err, dragonboat.ErrCanceled) || errors.Is(ctx.Err(), context.Canceled) {
			return fmt.Errorf("rsqlite: %s: %w", op, context.Canceled)
		}
		if ctx.Err() != nil || errors.Is(err, dragonboat.ErrInvalidDeadline) {
			return n.deadline(shardID, op, last)
		}
		if cause := n.diskFault(shardID); cause != nil {
			// The disk failed while this attempt was in flight: its
			// outcome is unknown, so say so rather than wait it out.
			return &deadlineError{kind: ErrTimeout, op: op, last: last, cause: cause}
		}
		if !retryable(err) {
			return fmt.Errorf("rsqlite: %s: %w", op, err)
		}
		if errors.Is(err, dragonboat.ErrTimeout) {
			// A proposal the leader never got (a dead leader, or a message
			// dropped by a transport circuit breaker) is lost silently, so
			// keep attempts short; a slow one that did commit answers the
			// retry from its exactly-once record.
			per = min(2*per, maxPer)
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return n.ended(ctx, shardID, op, last)
		}
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// maxAttempt caps one attempt of a proposal or read barrier.
const maxAttempt = time.Second

// transferTime is the extra time an attempt allows for a command of n
// bytes: one second per MiB, a rate that slow disks and the race detector
// still beat. Commands under 64 KiB get none.
func transferTime(n int) time.Duration {
	if n < 64<<10 {
		return 0
	}
	return time.Duration(n) * time.Second / (1 << 20)
}

func retryable(err error) bool {
	for _, e := range []error{
		dragonboat.ErrShardNotReady, dragonboat.ErrSystemBusy, dragonboat.ErrTimeout,
		dragonboat.ErrShardClosed, dragonboat.ErrAborted, dragonboat.ErrRejected,
		dragonboat.ErrShardNotInitialized, dragonboat.ErrTimeoutTooSmall,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// ended builds the error for an operation whose ctx ended while it waited:
// cancelled, or its deadline passed (see deadline); last is the error of
// its last attempt, if it made one.
func (n *Node) ended(ctx context.Context, shardID uint64, op string, last error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("rsqlite: %s: %w", op, context.Canceled)
	}
	if last == nil {
		last = ctx.Err()
	}
	return n.deadline(shardID, op, last)
}

// deadline builds the error for an operation whose deadline passed: no
// quorum if neither the group nor the catalog has a leader this node knows
// of, else a timeout.
func (n *Node) deadline(shardID uint64, op string, last error) error {
	if cause := n.diskFault(shardID); cause != nil {
		return &deadlineError{kind: ErrTimeout, op: op, last: last, cause: cause}
	}
	kind := ErrTimeout
	if _, _, ok, err := n.nh.GetLeaderID(shardID); err == nil && !ok {
		// No leader for the group. If the catalog has one, a quorum of the
		// nodes is reachable and the group is still electing (just started
		// or woken): a timeout, not a lost quorum.
		if _, _, catOK, err := n.nh.GetLeaderID(catalogShardID); shardID == catalogShardID || err != nil || !catOK {
			kind = ErrNoQuorum
		}
	}
	return &deadlineError{kind: kind, op: op, last: last}
}

// Leader returns the replica ID of the group's leader as this node knows it.
func (db *DB) Leader() (replicaID uint64, ok bool) {
	id, _, ok, err := db.node.nh.GetLeaderID(db.shardID)
	return id, ok && err == nil
}

// LeaderAddress returns the raft address of the group's leader as this node
// knows it.
func (db *DB) LeaderAddress() (string, bool) {
	id, ok := db.Leader()
	if !ok {
		return "", false
	}
	info := db.node.nh.GetNodeHostInfo(dragonboat.NodeHostInfoOption{SkipLogInfo: true})
	if info == nil {
		return "", false
	}
	for _, s := range info.ShardInfoList {
		if s.ShardID == db.shardID {
			addr, ok := s.Replicas[id]
			return addr, ok
		}
	}
	return "", false
}

// Halted returns why the local replica stopped applying at a committed
// entry it must not apply (see statemachine.SM.Halted), or nil.
func (db *DB) Halted() error {
	if s := db.cur(); s != nil {
		return s.Halted()
	}
	return nil
}
