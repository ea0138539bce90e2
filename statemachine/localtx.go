package statemachine

import (
	"errors"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Node-local transactions (the driver's optimistic transactions) execute on
// their own connection to this file and may hold its write lock. The
// applier must never wait for them: an entry being applied means the
// transaction's snapshot is stale anyway, so it aborts them and goes on.

// LocalTxs is the set of a file's node-local transactions. It outlives an
// SM: a replica stopped and started again (hibernation) gets a new SM for
// the same file, which must still abort the transactions already open.
type LocalTxs struct {
	mu     sync.Mutex
	next   uint64
	aborts map[uint64]func()
}

// Register records abort, which must roll back the local transaction's
// connection (releasing the write lock) before it returns. The returned
// function unregisters it.
func (l *LocalTxs) Register(abort func()) (unregister func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.aborts == nil {
		l.aborts = map[uint64]func(){}
	}
	l.next++
	id := l.next
	l.aborts[id] = abort
	return func() {
		l.mu.Lock()
		delete(l.aborts, id)
		l.mu.Unlock()
	}
}

func (l *LocalTxs) abortAll() {
	l.mu.Lock()
	aborts := make([]func(), 0, len(l.aborts))
	for id, f := range l.aborts {
		aborts = append(aborts, f)
		delete(l.aborts, id)
	}
	l.mu.Unlock()
	for _, f := range aborts {
		f()
	}
}

// beginBatch takes the write lock, aborting local transactions that hold it.
func (s *SM) beginBatch() error {
	for attempt := 0; ; attempt++ {
		_, err := s.conn.Exec("BEGIN IMMEDIATE", nil)
		var se sqlite3.Error
		if err == nil || !errors.As(err, &se) || se.Code != sqlite3.ErrBusy || attempt == 100 {
			return err
		}
		s.locals.abortAll()
		if attempt > 0 {
			time.Sleep(time.Millisecond)
		}
	}
}
