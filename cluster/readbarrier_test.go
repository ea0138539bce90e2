package cluster

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeReadIndex stands in for a ReadIndex: each call is a round that
// reports its start and waits until the test releases it.
type fakeReadIndex struct {
	started chan int // round number, sent when a round starts
	release chan error
	mu      sync.Mutex
	rounds  int
}

func newFakeReadIndex() *fakeReadIndex {
	return &fakeReadIndex{started: make(chan int, 10), release: make(chan error)}
}

func (f *fakeReadIndex) once(ctx context.Context) error {
	f.mu.Lock()
	f.rounds++
	n := f.rounds
	f.mu.Unlock()
	f.started <- n
	select {
	case err := <-f.release:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

type waitResult struct {
	err     error
	ctxDone bool
}

func waitAsync(rb *readBarrier, f *fakeReadIndex, d time.Duration) <-chan waitResult {
	out := make(chan waitResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		ctxDone, err := rb.wait(ctx, context.Background(), f.once)
		out <- waitResult{err, ctxDone}
	}()
	return out
}

// queued waits until n readers wait for the next round.
func queued(t *testing.T, rb *readBarrier, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		rb.mu.Lock()
		got := 0
		if rb.next != nil {
			got = rb.next.readers
		}
		rb.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d readers queued for the next round, want %d", got, n)
		}
	}
}

func expectStart(t *testing.T, f *fakeReadIndex, want int) {
	t.Helper()
	select {
	case n := <-f.started:
		if n != want {
			t.Fatalf("round %d started, want %d", n, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("round %d did not start", want)
	}
}

func expectPending(t *testing.T, ch <-chan waitResult, who string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s returned (%v) before its round", who, r.err)
	case <-time.After(50 * time.Millisecond):
	}
}

func expectDone(t *testing.T, ch <-chan waitResult, who string, wantErr error) {
	t.Helper()
	select {
	case r := <-ch:
		if r.ctxDone || !errors.Is(r.err, wantErr) && r.err != wantErr {
			t.Fatalf("%s: err %v (ctx done %v), want %v", who, r.err, r.ctxDone, wantErr)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not return", who)
	}
}

// TestReadBarrierStartsAfterArrival: a reader that arrives while a round
// is in flight is not answered by it (that round may have read the commit
// index before the reader's call), but by the next; readers that arrive
// during one round share the next one.
func TestReadBarrierStartsAfterArrival(t *testing.T) {
	var rb readBarrier
	f := newFakeReadIndex()
	a := waitAsync(&rb, f, 10*time.Second)
	expectStart(t, f, 1)
	b := waitAsync(&rb, f, 10*time.Second) // arrives during round 1
	c := waitAsync(&rb, f, 10*time.Second)
	queued(t, &rb, 2)
	expectPending(t, b, "b")
	f.release <- nil // round 1 ends
	expectDone(t, a, "a", nil)
	expectStart(t, f, 2) // b and c share it
	expectPending(t, b, "b")
	expectPending(t, c, "c")
	f.release <- nil
	expectDone(t, b, "b", nil)
	expectDone(t, c, "c", nil)
	select {
	case n := <-f.started:
		t.Fatalf("round %d started with nobody waiting", n)
	case <-time.After(50 * time.Millisecond):
	}

	// A failed round fails its readers; the next reader starts a fresh one.
	boom := errors.New("no leader")
	d := waitAsync(&rb, f, 10*time.Second)
	expectStart(t, f, 3)
	f.release <- boom
	expectDone(t, d, "d", boom)
	e := waitAsync(&rb, f, 10*time.Second)
	expectStart(t, f, 4)
	f.release <- nil
	expectDone(t, e, "e", nil)
}

// TestReadBarrierDeadlines: a round runs until the latest deadline of its
// readers, and a reader whose own deadline passes first returns then.
func TestReadBarrierDeadlines(t *testing.T) {
	var rb readBarrier
	f := newFakeReadIndex()
	hold := waitAsync(&rb, f, 10*time.Second)
	expectStart(t, f, 1)
	short := waitAsync(&rb, f, 300*time.Millisecond) // waits for round 2
	long := waitAsync(&rb, f, 10*time.Second)
	queued(t, &rb, 2)
	f.release <- nil
	expectDone(t, hold, "hold", nil)
	expectStart(t, f, 2)
	select {
	case r := <-short:
		if !r.ctxDone || !errors.Is(r.err, context.DeadlineExceeded) {
			t.Fatalf("short reader: %v (ctx done %v), want its deadline", r.err, r.ctxDone)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the short reader did not return at its deadline")
	}
	expectPending(t, long, "long") // round 2 still runs for it
	f.release <- nil
	expectDone(t, long, "long", nil)
}
