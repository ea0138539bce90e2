package statemachine

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"

	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/mattn/go-sqlite3"
)

// snapshotPoint is a read transaction pinned at the applied index: the
// consistent state SaveSnapshot copies while Update goes on.
type snapshotPoint struct {
	conn  *sqlite3.SQLiteConn
	index uint64
}

func (s *SM) openPlain(path string, params url.Values) (*sqlite3.SQLiteConn, error) {
	c, err := (&sqlite3.SQLiteDriver{}).Open(FileURI(path, params))
	if err != nil {
		return nil, err
	}
	return c.(*sqlite3.SQLiteConn), nil
}

// PrepareSnapshot pins a read transaction; it runs while Update is excluded,
// so the pinned state is exactly the applied index.
func (s *SM) PrepareSnapshot() (any, error) {
	c, err := s.openPlain(s.opts.Path, url.Values{"_busy_timeout": {"10000"}})
	if err != nil {
		return nil, fmt.Errorf("rsqlite: snapshot of %s: %w", s.opts.Path, err)
	}
	// BEGIN alone takes no snapshot; the first read does.
	if _, err := c.Exec("BEGIN; SELECT count(*) FROM sqlite_schema;", nil); err != nil {
		c.Close()
		return nil, fmt.Errorf("rsqlite: snapshot of %s: %w", s.opts.Path, err)
	}
	return &snapshotPoint{conn: c, index: s.applied.Load()}, nil
}

// SaveSnapshot copies the pinned state into a temporary file with the backup
// API (reusing the pinned read transaction) and streams the file to w.
func (s *SM) SaveSnapshot(ctx any, w io.Writer, stopc <-chan struct{}) error {
	p := ctx.(*snapshotPoint)
	defer p.conn.Close()
	tmp := tempPath(s.opts.Path, "snapshot")
	defer removeDB(tmp)
	if err := backup(tmp, p.conn, stopc, s.openPlain); err != nil {
		return err
	}
	f, err := os.Open(tmp)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, f)
	if err != nil {
		return sm.ErrSnapshotStreaming
	}
	s.opts.Observer.SnapshotSent(n)
	return nil
}

// RecoverFromSnapshot replaces the database with a received image. The image
// is copied into the live file with the backup API, in one write
// transaction, so local readers see the old state or the new one.
func (s *SM) RecoverFromSnapshot(r io.Reader, stopc <-chan struct{}) error {
	tmp := tempPath(s.opts.Path, "recover")
	defer removeDB(tmp)
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	size, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("rsqlite: receive snapshot of %s: %w", s.opts.Path, err)
	}
	src, err := s.openPlain(tmp, url.Values{"mode": {"ro"}})
	if err != nil {
		return fmt.Errorf("rsqlite: open received snapshot: %w", err)
	}
	defer src.Close()
	if err := copyDB(s.conn, src, stopc); err != nil {
		return fmt.Errorf("rsqlite: restore snapshot into %s: %w", s.opts.Path, err)
	}
	s.settings = ^s.settings // force the next command to set every pragma again
	if err := s.setSettings(0); err != nil {
		return err
	}
	if err := s.loadMeta(); err != nil {
		return err
	}
	s.snapshotsReceived.Add(1)
	s.opts.Observer.SnapshotReceived(size)
	return nil
}

func backup(destPath string, src *sqlite3.SQLiteConn, stopc <-chan struct{}, open func(string, url.Values) (*sqlite3.SQLiteConn, error)) error {
	dst, err := open(destPath, nil)
	if err != nil {
		return err
	}
	defer dst.Close()
	return copyDB(dst, src, stopc)
}

// copyDB copies src's main database into dst's in steps, watching stopc.
func copyDB(dst, src *sqlite3.SQLiteConn, stopc <-chan struct{}) error {
	b, err := dst.Backup("main", src, "main")
	if err != nil {
		return err
	}
	for {
		select {
		case <-stopc:
			b.Close()
			return sm.ErrSnapshotStopped
		default:
		}
		done, err := b.Step(1024)
		if err != nil {
			b.Close()
			return err
		}
		if done {
			return b.Finish()
		}
	}
}

func tempPath(path, what string) string {
	var b [6]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%s-%s.tmp", path, what, hex.EncodeToString(b[:]))
}

// removeDB deletes a temporary database and its side files; a file that
// is already gone is fine.
func removeDB(path string) {
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		os.Remove(p)
	}
}

// Backup writes a consistent copy of the database to w as a plain SQLite
// file (rollback journal mode, without rsqlite's bookkeeping tables), as of
// some applied index. It may run concurrently with Update.
func (s *SM) Backup(w io.Writer) error {
	if s.closed.Load() {
		return errors.New("rsqlite: state machine closed")
	}
	point, err := s.PrepareSnapshot()
	if err != nil {
		return err
	}
	p := point.(*snapshotPoint)
	defer p.conn.Close()
	tmp := tempPath(s.opts.Path, "backup")
	defer removeDB(tmp)
	if err := backup(tmp, p.conn, nil, s.openPlain); err != nil {
		return fmt.Errorf("rsqlite: back up %s: %w", s.opts.Path, err)
	}
	c, err := s.openPlain(tmp, nil)
	if err != nil {
		return err
	}
	_, err = c.Exec(`DROP TABLE IF EXISTS _rsqlite_meta; DROP TABLE IF EXISTS _rsqlite_requests;
		PRAGMA journal_mode=DELETE; VACUUM;`, nil)
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("rsqlite: back up %s: %w", s.opts.Path, err)
	}
	f, err := os.Open(tmp)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
