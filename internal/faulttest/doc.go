// Package faulttest holds rsqlite's fault-injection tests: real three-node
// clusters in this process (internal/clustertest) whose raft links run
// through proxies that cut them on command, driven through database/sql.
//
//   - TestLinearizable: reads, writes and compare-and-set on 24 keys from
//     six clients on three nodes, while a seeded schedule isolates the
//     leader, splits the cluster, removes quorum, stops and restarts
//     nodes and pauses them (the proxies hold a paused node's traffic and
//     deliver it late on resume, as peers see a SIGSTOPped process); the
//     six kinds are dealt from a seeded deck, so the default six faults
//     include each once; the history is checked with porcupine, partitioned by key.
//   - TestSetSurvivesFaults: every acknowledged insert is present exactly
//     once on every node after the faults heal; the nodes converge (same
//     applied index, same dump, integrity_check ok) within 10 s and accept
//     writes within 5 s of the heal.
//   - TestExactlyOnceLeaderStop: the leader stops while many writes are in
//     flight; none applies twice and every acknowledged one is present.
//   - TestBadInput, TestBadInputDSN: malformed DSNs, oversized commands,
//     big blobs, many parameters, refused statements, pragmas, invalid
//     UTF-8 and NUL bytes: each a clear error or a correct result, and the
//     replicas stay identical.
//   - TestBadInputQueryNeverCrashes: odd texts (empty, comment-only,
//     leading NUL) through Query, Prepare and Exec, each in a child
//     process so that a crash fails its case instead of the binary.
//   - TestDiskFaults: a full disk (ENOSPC) and a failing one (EIO) under
//     one node's SQLite files (internal/detvfs) and under its raft log
//     (internal/raftdisk), in turn, while every node takes writes: the
//     node's callers get a clear error carrying SQLite's code for that
//     disk, the others go on, the node resumes by itself once the disk is
//     fixed, and at the end nothing acknowledged is lost or doubled and the
//     replicas are identical.
//   - TestRaftLogFsyncFailure: after a failed fsync of its raft log a node
//     refuses work until restarted (the kernel may have dropped the data);
//     restarted, it catches up.
//   - TestPartitionMachinery, TestPauseMachinery and TestRegisterModel
//     check the tools: the proxy network really partitions; pausing the
//     leader elects another, and on resume the held messages arrive late,
//     the old leader follows the new one and the replicas converge; and the
//     porcupine model really catches stale reads.
//
// Every randomised test prints its seed and the command that reruns it
// (RSQLITE_SEED=<seed>). The default run is short; RSQLITE_SOAK=1 runs the
// long versions (thousands of operations, dozens of faults).
package faulttest
