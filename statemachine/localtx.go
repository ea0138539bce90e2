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

type localTxs struct {
	mu     sync.Mutex
	next   uint64
	aborts map[uint64]func()
}

// RegisterLocalTx records abort, which must roll back the local
// transaction's connection (releasing the write lock) before it returns.
// The returned function unregisters it.
func (s *SM) RegisterLocalTx(abort func()) (unregister func()) {
	s.locals.mu.Lock()
	defer s.locals.mu.Unlock()
	if s.locals.aborts == nil {
		s.locals.aborts = map[uint64]func(){}
	}
	s.locals.next++
	id := s.locals.next
	s.locals.aborts[id] = abort
	return func() {
		s.locals.mu.Lock()
		delete(s.locals.aborts, id)
		s.locals.mu.Unlock()
	}
}

func (s *SM) abortLocalTxs() {
	s.locals.mu.Lock()
	aborts := make([]func(), 0, len(s.locals.aborts))
	for id, f := range s.locals.aborts {
		aborts = append(aborts, f)
		delete(s.locals.aborts, id)
	}
	s.locals.mu.Unlock()
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
		s.abortLocalTxs()
		if attempt > 0 {
			time.Sleep(time.Millisecond)
		}
	}
}
