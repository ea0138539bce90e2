package clustertest

import "io"

// Pausing a node
//
// Pause(i) makes node i look, to its peers, like a process that received
// SIGSTOP: every proxied connection to or from node i stays open, but its
// proxy stops copying in both directions. The proxy holds at most the one
// chunk (up to 32 KiB) it had read when the pause began; after that it does
// not read, so the kernel's socket buffers fill and a sender's writes block
// and eventually time out, as against a stopped process. Dragonboat's
// receivers meanwhile see a silent connection (their read deadlines expire;
// one that expires in the middle of a frame closes the connection, as it
// would against a stopped sender). Connections opened to or from a paused
// node are accepted, identified from their first frame and connected to the
// backend, then held the same way: nothing, the first frame included, is
// delivered until Resume. Resume(i) releases everything held, in order:
// peers receive the stale messages late, which a partition never does (it
// closes the connections and their contents are lost).
//
// Only the network is paused. Node i's goroutines keep running: its raft
// clock ticks (a paused leader steps down by CheckQuorum after an election
// timeout, where a stopped process would resume still believing it leads),
// and clients of its *sql.DB get answers, errors or timeouts from it rather
// than hanging. cmd/rsqlite's TestCrashSIGKILL pauses real processes with
// SIGSTOP and SIGCONT for that.
//
// Pauses are independent of partitions: Partition and Block neither end
// nor start one, and a link can be both cut and paused (cutting closes the
// connection, dropping what it held). Heal ends both.

// copyBuf is the most a proxy direction reads before it writes, hence the
// most it holds while paused.
const copyBuf = 32 << 10

// Pause freezes node i's network: see "Pausing a node" above. Pausing a
// paused node does nothing.
func (fn *Net) Pause(i int) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if fn.closed || fn.paused[i] {
		return
	}
	fn.paused[i] = true
	fn.pauses.Add(1)
}

// Resume ends node i's pause: every held byte to and from it is delivered,
// late and in order. Resuming a node that is not paused does nothing.
func (fn *Net) Resume(i int) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	fn.paused[i] = false
	fn.cond.Broadcast()
}

// resumeAllLocked ends every pause (Heal).
func (fn *Net) resumeAllLocked() {
	for i := range fn.paused {
		fn.paused[i] = false
	}
	fn.cond.Broadcast()
}

// Paused reports whether node i is paused.
func (fn *Net) Paused(i int) bool {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return fn.paused[i]
}

// pipe copies r to w for pc, first writing first, each write waiting while
// either end of pc is paused. It returns when r or w fails or pc closes.
func (fn *Net) pipe(pc *proxyConn, w io.Writer, r io.Reader, first []byte) {
	if len(first) > 0 && !fn.send(pc, w, first) {
		return
	}
	buf := make([]byte, copyBuf)
	for {
		n, err := r.Read(buf)
		if n > 0 && !fn.send(pc, w, buf[:n]) {
			return
		}
		if err != nil {
			return
		}
	}
}

// send writes b to w once neither end of pc is paused; false if pc closed
// meanwhile or the write failed. A blocked Read cannot be held, so the gate
// is here, between a read and its write.
func (fn *Net) send(pc *proxyConn, w io.Writer, b []byte) bool {
	fn.mu.Lock()
	held := false
	for !pc.closed && (fn.paused[pc.src] || fn.paused[pc.dst]) {
		held = true
		fn.cond.Wait() // woken by Resume, Heal, Close and closing pc
	}
	closed := pc.closed
	fn.mu.Unlock()
	if closed {
		return false
	}
	if _, err := w.Write(b); err != nil {
		return false
	}
	if held {
		fn.held.Add(1)
		fn.heldBytes.Add(int64(len(b)))
	}
	return true
}
