// Package detvfs makes the SQLite functions that could evaluate differently on
// two replicas deterministic for rsqlite's applying connection.
//
// Every node re-executes the same SQL entries on its own SQLite file, so the
// clock, random() and randomblob() must be functions of the entry, not of
// the machine. A second source of divergence is per-connection state and
// statements whose effect is not part of the replicated database file. This
// package handles both, per applying connection:
//
//   - Clock: a shim VFS (New, named "rsqlite-det-<n>") wraps "unix" and
//     overrides only xCurrentTime/xCurrentTimeInt64. SQLite reads 'now' through
//     the connection's VFS, once per sqlite3_step, for CURRENT_TIMESTAMP/DATE/
//     TIME, date/time/datetime/julianday/strftime/unixepoch/timediff('now'),
//     column DEFAULTs and triggers, so one Set covers them all.
//   - Files: the shim wraps every file it opens, only so that tests can
//     inject disk faults. The wrapper forwards every method, including the
//     shm and mmap ones, to the "unix" file, with the same iVersion and the
//     same missing methods, so WAL, locking and mmap are unchanged. With no
//     fault registered its only extra cost is one atomic load per xWrite,
//     xTruncate and xSync.
//   - Disk faults (tests only): InjectFault(dir, NoSpace or IOError) makes
//     writes to files under dir, opened through any shim in the process, fail
//     as a full or failing disk would, with the codes "unix" returns for
//     ENOSPC (SQLITE_FULL from xWrite) and EIO (SQLITE_IOERR_WRITE, _FSYNC,
//     _TRUNCATE); InjectFault(dir, NoFault) clears it and FaultHits counts
//     failed operations. This lets one in-process node run out of disk while
//     the others keep working. Reads, the -shm file (the unix VFS opens it
//     itself; it is a rebuildable index), temp files and connections opened
//     with another VFS are not faulted.
//   - Randomness: a process-wide sqlite3_auto_extension registers C
//     random()/randomblob(N) (SQLITE_INNOCUOUS, not deterministic, so they work
//     in DEFAULTs and triggers even with trusted_schema=OFF) on every
//     connection whose main database uses a shim. They draw from a
//     counter-based splitmix64 stream restarted by Set(time, seed). SQLite's
//     own PRNG cannot be used: it is one process-wide stream also consumed by
//     WAL salts, journal headers and other connections. Without a seed (before
//     Set or after Clear) they fall back to sqlite3_randomness.
//   - Connection state: ResetConn sets last_insert_rowid to 0 at the start of
//     an entry. It does not reset changes(): run a no-op DML for that if needed.
//   - Guard: the same auto-extension installs an authorizer, off by default,
//     which SetGuard(true) turns on while user statements are prepared. It
//     denies (SQLITE_AUTH):
//     ATTACH/DETACH (other files are not replicated);
//     BEGIN/COMMIT/ROLLBACK/SAVEPOINT/RELEASE (they would break the
//     applier's batch transaction and per-entry savepoint);
//     CREATE/DROP of TEMP tables, indexes, triggers and views (they are
//     connection state and are lost on restart or snapshot restore);
//     load_extension() and total_changes() (node-local code, and a counter
//     that depends on the connection's age);
//     PRAGMAs outside a read-only or persistent allow list (per-connection
//     pragmas such as foreign_keys are set once by the driver and are not
//     persisted; page_size is allowed only when read);
//     and writes to tables whose name starts with "_rsqlite_" (rsqlite's
//     bookkeeping). As well as INSERT/UPDATE/DELETE, the write check covers
//     CREATE/DROP/ALTER TABLE, CREATE/DROP INDEX and TRIGGER on such a table or
//     with such a name, and CREATE/DROP VIEW and virtual tables with such a name.
//     Writes that triggers make are checked too, because triggers are compiled
//     into the statement that fires them. TEMP objects are also caught when
//     named temp.x, including "CREATE TRIGGER temp.x ... ON main_table", which
//     SQLite authorizes as a main trigger. Only the nested INSERT into
//     sqlite_temp_master reveals it.
//     A denial fails the prepare with SQLITE_AUTH, except for functions:
//     SQLite reports a denied function as SQLITE_ERROR "not authorized to use
//     function: X". LastDenied names the last denial (e.g. "PRAGMA
//     foreign_keys", "FUNCTION total_changes", "CREATE TEMP object"). It is the
//     uniform signal that the guard, and not the SQL, failed a statement.
//   - PinLocaltime makes 'localtime'/'utc' use UTC process-wide.
//
// Why per connection: the clock, seed and guard live in the VFS object, and
// every connection opened with that VFS shares them. Give each applying
// connection its own VFS (pool size 1) and open local readers with vfs=unix.
// Why C: random() needs to cost about as much as the built-in. A Go
// RegisterFunc costs a cgo callback per call and cannot be SQLITE_INNOCUOUS.
// The VFS, auto-extension and authorizer hooks need C function pointers
// anyway. The C code links against go-sqlite3's amalgamation (which this
// package imports), using a verbatim copy of its sqlite3-binding.h. Re-copy
// the header when bumping go-sqlite3: TestHeaderMatchesModule fails if the
// copy is stale. Builds with the libsqlite3 tag are not supported.
//
// Caveats:
//   - The authorizer is consulted when a statement is prepared. A statement
//     prepared with the guard off but run with it on (go-sqlite3's statement
//     cache, a *sql.Stmt) would bypass it. So SetGuard(true) expires all
//     prepared statements (it re-installs the authorizer) whenever the guard
//     would have denied something while it was off, and they are re-prepared
//     before their next run.
//   - Clock, seed and guard state belong to the VFS, not to one connection. A
//     connection (re)opened while the guard is on runs go-sqlite3's DSN
//     pragmas under it and fails to open, so switch the guard off around opens.
//   - Do not call (*sqlite3.SQLiteConn).RegisterAuthorizer on the applying
//     connection: SQLite has one authorizer per connection.
//   - ALTER TABLE x RENAME TO _rsqlite_y is not denied (the authorizer is not
//     told the new name).
//   - Close returns ErrConnOpen while a connection using the VFS is open.
//     SQLite forgets the connection when sqlite3_close_v2 runs, even if
//     unfinalized statements keep it alive as a "zombie"; database/sql never
//     leaves one.
package detvfs
