package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Read barriers are shared. A ReadIndex costs a heartbeat round from the
// leader to a quorum, the same for one reader as for a hundred, so readers
// that arrive together wait on one barrier.
//
// Linearizability is kept by starting a shared barrier only after every
// reader waiting on it arrived: a reader that comes while a barrier is in
// flight waits for the next one (the one in flight may have read the
// commit index before that reader's call began). This is etcd's
// linearizable-read loop, with the loop running only while readers wait,
// and up to maxRounds rounds in flight at once so that a reader who just
// missed one does not wait for it to end before its own starts.

// readBarrier is a DB's queue of readers waiting for a barrier.
type readBarrier struct {
	mu      sync.Mutex
	next    *barrierRound // collecting readers; nil when nobody waits
	running int           // goroutines running rounds
}

// maxRounds bounds the barriers of one database in flight at once.
const maxRounds = 1

// barrierRound is one ReadIndex and the readers it serves.
type barrierRound struct {
	deadline time.Time     // the latest deadline of its readers
	done     chan struct{} // closed when err is set
	err      error
}

// sharedBarrier waits for a barrier that starts after this call.
func (db *DB) sharedBarrier(ctx context.Context) error {
	deadline, _ := ctx.Deadline() // retry checks it is set
	rb := &db.barrier
	rb.mu.Lock()
	r := rb.next
	if r == nil {
		r = &barrierRound{deadline: deadline, done: make(chan struct{})}
		rb.next = r
	}
	if deadline.After(r.deadline) {
		r.deadline = deadline
	}
	if rb.running < maxRounds {
		rb.running++
		go db.runBarriers()
	}
	rb.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		op := "read barrier on " + db.name
		if errors.Is(ctx.Err(), context.Canceled) {
			return fmt.Errorf("rsqlite: %s: %w", op, context.Canceled)
		}
		return db.node.deadline(db.shardID, op, ctx.Err())
	}
}

// runBarriers runs rounds until no reader waits.
func (db *DB) runBarriers() {
	rb := &db.barrier
	for {
		rb.mu.Lock()
		r := rb.next
		rb.next = nil
		if r == nil {
			rb.running--
			rb.mu.Unlock()
			return
		}
		rb.mu.Unlock()
		ctx, cancel := context.WithDeadline(db.node.ctx, r.deadline)
		r.err = db.barrierOnce(ctx)
		cancel()
		close(r.done)
	}
}
