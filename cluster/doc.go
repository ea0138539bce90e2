// Package cluster runs an rsqlite node: one dragonboat NodeHost per data
// directory, the catalog that maps database names to raft groups, and the
// replica of every database.
//
// A node is shared by every user in the process that names its directory
// ([Acquire] / [Node.Release]); it stops when the last one releases it.
//
// # Groups
//
// The catalog is raft group 1, hosted by every member. Opening a database
// that the catalog does not know proposes its creation; every node that
// applies that entry starts a replica of the new group (shard IDs are
// assigned in log order, so they agree everywhere) with an on-disk state
// machine from package statemachine on <dir>/<name>.
//
// # Retries
//
// [DB.Propose] and [DB.Barrier] retry until the caller's deadline when the
// group has no leader, is electing one, or dropped the request. Retrying a
// proposal can commit it twice; the state machine's request records make
// the second a no-op that answers with the first's result. When the deadline
// passes, the error wraps [ErrNoQuorum] if no leader is known, else
// [ErrTimeout]; in both cases the write's outcome is unknown. Concurrent
// [DB.Barrier] callers share one ReadIndex (readbarrier.go).
//
// # Hibernation
//
// A running replica costs CPU and memory even when idle. With
// [Config.Hibernate] set, the catalog puts a database that no member used
// for that long to sleep (every node stops its replica) and wakes it on the
// next write, read barrier or transaction through any node, at the cost of
// an election (hibernate.go). Stale reads of a sleeping database read the
// local file and do not wake it.
//
// # Disk faults
//
// A full or failing disk stalls this node instead of crashing the process:
// its raft log's writes are retried (internal/raftdisk) and its replicas
// retry the batches SQLite could not write (statemachine.ApplyFault). While
// either lasts, writes and barriers fail at once with [*DiskFaultError]
// (nothing proposed, so retrying elsewhere is safe), /readyz says why, and
// the node resumes by itself when the disk takes writes again. A failed
// fsync of the raft log is final until the process restarts.
package cluster
