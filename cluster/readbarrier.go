package cluster

import (
	"context"
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
// linearizable-read loop, with the loop running only while readers wait.
// One round at a time: two in flight were measured slower (W3, 16 readers
// on 3 nodes), the extra ReadIndex costing more CPU than the wait it saves.

// readBarrier is a DB's queue of readers waiting for a barrier.
type readBarrier struct {
	mu      sync.Mutex
	next    *barrierRound // collecting readers; nil when nobody waits
	running bool          // run is running
}

// barrierRound is one ReadIndex and the readers it serves.
type barrierRound struct {
	readers  int           // how many joined it
	deadline time.Time     // the latest deadline of its readers
	done     chan struct{} // closed when err is set
	err      error
}

// wait returns the outcome of a round that starts after this call, or
// ctx's error (ctxDone) if ctx ends first. A round is once (one ReadIndex,
// retried until the latest deadline of its readers), run by a goroutine
// that serves rounds while readers wait; base bounds the rounds' contexts.
// ctx must have a deadline.
func (rb *readBarrier) wait(ctx, base context.Context, once func(context.Context) error) (ctxDone bool, err error) {
	deadline, _ := ctx.Deadline()
	rb.mu.Lock()
	r := rb.next
	if r == nil {
		r = &barrierRound{deadline: deadline, done: make(chan struct{})}
		rb.next = r
	}
	r.readers++
	if deadline.After(r.deadline) {
		r.deadline = deadline
	}
	if !rb.running {
		rb.running = true
		go rb.run(base, once)
	}
	rb.mu.Unlock()
	select {
	case <-r.done:
		return false, r.err
	case <-ctx.Done():
		return true, ctx.Err()
	}
}

// run serves rounds until no reader waits. A round takes every reader that
// arrived before it started; later ones wait for the next.
func (rb *readBarrier) run(base context.Context, once func(context.Context) error) {
	for {
		rb.mu.Lock()
		r := rb.next
		rb.next = nil
		if r == nil {
			rb.running = false
			rb.mu.Unlock()
			return
		}
		rb.mu.Unlock()
		ctx, cancel := context.WithDeadline(base, r.deadline)
		r.err = once(ctx)
		cancel()
		close(r.done)
	}
}

// sharedBarrier waits for a barrier that starts after this call.
func (db *DB) sharedBarrier(ctx context.Context) error {
	ctxDone, err := db.barrier.wait(ctx, db.node.ctx, db.barrierOnce)
	if !ctxDone {
		return err
	}
	return db.node.ended(ctx, db.shardID, "read barrier on "+db.name, nil)
}
