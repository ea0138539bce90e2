// Package statemachine applies replicated rsqlite commands to a real SQLite file.
//
// One [SM] holds one database. It implements dragonboat's IOnDiskStateMachine:
// dragonboat hands it batches of committed raft entries, each an encoded
// [command.Command], and the SM executes them on its own SQLite connection
// (mattn/go-sqlite3). Every node runs the same entries in the same order on
// its own file, so the files stay identical. The contracts that keep them so:
//
// # Durability and the applied index
//
// The index of the last applied entry and the exactly-once records live in
// the SQLite file itself (tables _rsqlite_meta and _rsqlite_requests), written
// in the same SQLite transaction as the data. A batch of entries is one
// transaction, so after a crash Open reports exactly the last index whose
// effects are in the file, and dragonboat replays the rest from the raft log.
// The file runs in WAL mode with synchronous=NORMAL: a crash may lose a
// suffix of committed transactions (never a middle one), which the raft log
// still holds. [SM.Sync] fsyncs the WAL and the file; dragonboat calls it
// before it compacts the log, so nothing the log forgets is only in memory.
//
// # Determinism
//
// Each entry carries the proposer's clock and a random seed. The applying
// connection uses its own deterministic VFS (internal/detvfs), so 'now',
// CURRENT_TIMESTAMP, random() and randomblob() evaluate to the same values on
// every node, in statements, DEFAULTs and triggers alike. changes() and
// last_insert_rowid() are reset before each entry. An authorizer refuses,
// deterministically, what cannot be replicated (ATTACH, transaction control,
// TEMP objects, per-connection pragmas, load_extension, writes to the
// bookkeeping tables). Per-connection settings that change SQL semantics
// (foreign_keys, ...) travel with each command and are set before it runs.
//
// # Outcomes
//
// A statement that fails in SQLite (a constraint, a syntax error, no such
// table) is a deterministic outcome: its savepoint is rolled back, the error
// with its codes is the entry's result, and the entry counts as applied.
// Errors of the environment (disk full, I/O error, out of memory) are not a
// function of the entry; the batch is rolled back and retried until it
// succeeds or the replica stops, so no node records a failure the others did
// not have.
//
// # Exactly-once
//
// A command with a ClientID is applied at most once: the SM records the
// latest sequence number and result of each client, and answers a retried
// duplicate with the recorded result instead of running it again.
//
// # Snapshots
//
// A snapshot is a consistent copy of the file made with SQLite's backup API
// from a pinned read transaction; recovery copies a received image into the
// live file with the same API, so local readers never see a half-copied file.
package statemachine
