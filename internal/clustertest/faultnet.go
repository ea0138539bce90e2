package clustertest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/lni/dragonboat/v4/raftpb"

	"github.com/rsqlite/rsqlite/cluster"
)

// Fault-injecting network
//
// NewWithNet starts every node's raft transport on a private loopback
// address (cluster.ListenAddressHook) and puts a TCP proxy on the raft
// address that peers dial. All raft traffic between nodes therefore flows
// through the proxies, which can cut any directed link.
//
// Peers dial from ephemeral ports of 127.0.0.1, so a proxy cannot tell
// from the TCP connection which node dialled it. It tells from the first
// frame instead: dragonboat's TCP transport starts every connection with a
// frame (2-byte magic, 18-byte header with method and payload size, then the
// payload). A raft connection's payload is a pb.MessageBatch whose
// SourceAddress is the sender's raft address; a snapshot connection's is a
// pb.Chunk whose From is the sender's replica ID, which rsqlite derives from
// the position of the node's address among the sorted peers, the same in
// every group. A connection whose sender cannot be identified is refused,
// so a partition never leaks. The proxy reads the first frame, decides,
// then forwards that frame and the rest of the stream unchanged (the reverse
// direction carries only dragonboat's close acknowledgement), in chunks
// that it can hold back while either end is paused (pause.go).
//
// A link from i to j is blocked when a partition puts i and j in different
// groups (or Block(i, j) was called). Blocking a link closes every proxied
// connection on it at once, so raft notices without waiting for a timeout,
// and refuses new ones until Heal. Pausing a node (Pause, Resume) instead
// keeps its connections open and holds their bytes, delivering them late
// on Resume, as peers see a SIGSTOPped process; Heal also resumes every
// paused node. Everything binds 127.0.0.1 only, and every goroutine ends
// when the Net closes (registered with t.Cleanup, so before the cluster's
// nodes stop): a held copy wakes when its connection or the Net closes.

// listenAddrs maps a raft address to the address its node binds instead.
var listenAddrs sync.Map

func init() {
	prev := cluster.ListenAddressHook
	cluster.ListenAddressHook = func(raftAddress string) string {
		if v, ok := listenAddrs.Load(raftAddress); ok {
			return v.(string)
		}
		return prev(raftAddress)
	}
}

// Net is the fault-injecting network of a cluster made by NewWithNet.
type Net struct {
	t       testing.TB
	n       int
	byAddr  map[string]int // raft address -> node index
	byRepl  map[uint64]int // replica ID -> node index
	proxies []*proxy

	mu      sync.Mutex
	blocked [][]bool // blocked[from][to]
	paused  []bool
	cond    *sync.Cond // on mu: a pause ended or a connection closed
	conns   map[*proxyConn]struct{}
	closed  bool
	done    chan struct{} // closed by Close
	wg      sync.WaitGroup

	accepted, refused, cut, unknown atomic.Int64
	pauses, held, heldBytes         atomic.Int64
}

type proxy struct {
	net     *Net
	dst     int
	ln      net.Listener
	backend string
}

type proxyConn struct {
	src, dst int
	in, out  net.Conn
	closed   bool
}

// NewWithNet is New with every raft link running through a proxy that the
// returned Net controls. Call before any node starts (before Open).
func NewWithNet(t testing.TB, n int) (*Cluster, *Net) {
	t.Helper()
	// Runs after the cluster's own cleanup has stopped the nodes.
	var mapped []string
	t.Cleanup(func() {
		for _, a := range mapped {
			listenAddrs.Delete(a)
		}
	})
	c := New(t, n)
	fn := &Net{t: t, n: n, byAddr: map[string]int{}, byRepl: map[uint64]int{}, conns: map[*proxyConn]struct{}{}, done: make(chan struct{})}
	fn.cond = sync.NewCond(&fn.mu)
	fn.paused = make([]bool, n)
	fn.blocked = make([][]bool, n)
	for i := range fn.blocked {
		fn.blocked[i] = make([]bool, n)
	}
	t.Cleanup(fn.Close)
	// The proxies take the raft addresses: bound now and held, so no
	// outgoing connection can take the port in between.
	for i := range c.Nodes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("clustertest: proxy for node %d: %v", i, err)
		}
		fn.proxies = append(fn.proxies, &proxy{net: fn, dst: i, ln: ln, backend: quietPort(t)})
	}
	addrs := make([]string, n)
	for i, node := range c.Nodes {
		node.Raft = fn.proxies[i].ln.Addr().String()
		addrs[i] = node.Raft
		fn.byAddr[node.Raft] = i
	}
	c.peers = strings.Join(addrs, ",")
	sorted := slices.Clone(addrs)
	slices.Sort(sorted)
	for k, a := range sorted {
		fn.byRepl[uint64(k+1)] = fn.byAddr[a]
	}
	for _, p := range fn.proxies {
		listenAddrs.Store(c.Nodes[p.dst].Raft, p.backend)
		mapped = append(mapped, c.Nodes[p.dst].Raft)
		fn.wg.Add(1)
		go p.serve()
	}
	return c, fn
}

// Partition splits the nodes into groups that cannot reach each other;
// links within a group work. A node in no group is cut off from everyone.
// It replaces any earlier partition or block.
func (fn *Net) Partition(groups ...[]int) {
	group := make([]int, fn.n)
	for i := range group {
		group[i] = -1 - i // alone
	}
	for g, nodes := range groups {
		for _, i := range nodes {
			group[i] = g
		}
	}
	fn.set(func(from, to int) bool { return group[from] != group[to] })
}

// Isolate cuts node i off from every other node, in both directions.
func (fn *Net) Isolate(i int) {
	var rest []int
	for j := 0; j < fn.n; j++ {
		if j != i {
			rest = append(rest, j)
		}
	}
	fn.Partition([]int{i}, rest)
}

// Block cuts the one-way link from node from to node to: from's messages
// no longer reach to, while to's messages (its answers included, which
// travel on to's own connections) still reach from.
func (fn *Net) Block(from, to int) {
	fn.mu.Lock()
	fn.blocked[from][to] = true
	fn.cutLocked()
	fn.mu.Unlock()
}

// Heal restores every link and resumes every paused node.
func (fn *Net) Heal() {
	fn.set(func(int, int) bool { return false })
	fn.mu.Lock()
	fn.resumeAllLocked()
	fn.mu.Unlock()
}

// Blocked reports whether the link from node from to node to is cut.
func (fn *Net) Blocked(from, to int) bool {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return fn.blocked[from][to]
}

// NetStats counts proxied connections: accepted and forwarded, refused
// because their link was blocked, cut by a partition, and refused because
// the sender could not be identified; and pauses: how many times a node was
// paused, and the proxy writes (and their bytes) that waited for a pause to
// end and were delivered late. What queued behind them in socket buffers is
// late too, but not counted.
type NetStats struct {
	Accepted, Refused, Cut, Unidentified int64
	Pauses, Held, HeldBytes              int64
}

func (s NetStats) String() string {
	return fmt.Sprintf("%d connections forwarded, %d refused, %d cut, %d unidentified; %d pauses, %d writes (%d bytes) held and delivered late",
		s.Accepted, s.Refused, s.Cut, s.Unidentified, s.Pauses, s.Held, s.HeldBytes)
}

// Stats returns the connection counters.
func (fn *Net) Stats() NetStats {
	return NetStats{
		Accepted: fn.accepted.Load(), Refused: fn.refused.Load(), Cut: fn.cut.Load(), Unidentified: fn.unknown.Load(),
		Pauses: fn.pauses.Load(), Held: fn.held.Load(), HeldBytes: fn.heldBytes.Load(),
	}
}

func (fn *Net) set(blocked func(from, to int) bool) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	for i := range fn.blocked {
		for j := range fn.blocked[i] {
			fn.blocked[i][j] = i != j && blocked(i, j)
		}
	}
	fn.cutLocked()
}

// cutLocked closes every connection on a blocked link.
func (fn *Net) cutLocked() {
	for pc := range fn.conns {
		if fn.blocked[pc.src][pc.dst] {
			fn.closeConnLocked(pc)
			fn.cut.Add(1)
		}
	}
}

func (fn *Net) closeConnLocked(pc *proxyConn) {
	if pc.closed {
		return
	}
	pc.closed = true
	fn.cond.Broadcast() // a copy held by a pause gives up
	pc.in.Close()
	if pc.out != nil {
		pc.out.Close()
	}
	delete(fn.conns, pc)
}

// Close stops the proxies, closes every proxied connection and waits for
// all of the Net's goroutines. Nodes still running lose their links.
func (fn *Net) Close() {
	fn.mu.Lock()
	if fn.closed {
		fn.mu.Unlock()
		return
	}
	fn.closed = true
	close(fn.done)
	for _, p := range fn.proxies {
		p.ln.Close()
	}
	for pc := range fn.conns {
		fn.closeConnLocked(pc)
	}
	fn.mu.Unlock()
	fn.wg.Wait()
}

func (p *proxy) serve() {
	defer p.net.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // listener closed
		}
		p.net.wg.Add(1)
		go p.handle(c)
	}
}

// maxFirstFrame bounds the first frame a proxy buffers: a raft batch can
// carry entries up to rsqlite's 64 MiB command limit, several of them.
const maxFirstFrame = 1 << 30

// readFirstFrame reads the connection's first frame and returns its bytes
// and the method (100 raft, 200 snapshot) and payload.
func readFirstFrame(r io.Reader) (frame []byte, method uint16, payload []byte, err error) {
	head := make([]byte, 2+18)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, 0, nil, err
	}
	if head[0] != 0xAE || head[1] != 0x7D {
		return nil, 0, nil, errors.New("no dragonboat magic number")
	}
	method = binary.BigEndian.Uint16(head[2:])
	size := binary.BigEndian.Uint64(head[4:])
	if size == 0 || size > maxFirstFrame {
		return nil, 0, nil, fmt.Errorf("frame size %d", size)
	}
	frame = make([]byte, len(head)+int(size))
	copy(frame, head)
	if _, err := io.ReadFull(r, frame[len(head):]); err != nil {
		return nil, 0, nil, err
	}
	return frame, method, frame[len(head):], nil
}

// source identifies the sending node of a first frame, or -1.
func (fn *Net) source(method uint16, payload []byte) int {
	switch method {
	case 100:
		var b pb.MessageBatch
		if err := b.Unmarshal(payload); err != nil {
			return -1
		}
		if i, ok := fn.byAddr[b.SourceAddress]; ok {
			return i
		}
		if len(b.Requests) > 0 {
			if i, ok := fn.byRepl[b.Requests[0].From]; ok {
				return i
			}
		}
	case 200:
		var c pb.Chunk
		if err := c.Unmarshal(payload); err != nil {
			return -1
		}
		if i, ok := fn.byRepl[c.From]; ok {
			return i
		}
	}
	return -1
}

func (p *proxy) handle(in net.Conn) {
	fn := p.net
	defer fn.wg.Done()
	// Until identified, the connection is tracked nowhere: bound the wait.
	in.SetReadDeadline(time.Now().Add(5 * time.Second))
	stop := make(chan struct{})
	fn.wg.Add(1)
	go func() { // let Close interrupt the read of the first frame
		defer fn.wg.Done()
		select {
		case <-stop:
		case <-fn.done:
			in.Close()
		}
	}()
	frame, method, payload, err := readFirstFrame(in)
	close(stop)
	if err != nil {
		in.Close()
		return
	}
	src := fn.source(method, payload)
	if src < 0 {
		fn.unknown.Add(1)
		in.Close()
		return
	}
	in.SetReadDeadline(time.Time{})
	pc := &proxyConn{src: src, dst: p.dst, in: in}
	fn.mu.Lock()
	if fn.closed || fn.blocked[src][p.dst] {
		fn.mu.Unlock()
		fn.refused.Add(1)
		in.Close()
		return
	}
	fn.conns[pc] = struct{}{}
	fn.mu.Unlock()

	out, err := net.DialTimeout("tcp", p.backend, 2*time.Second)
	fn.mu.Lock()
	if err != nil || pc.closed {
		if err == nil {
			out.Close()
		}
		fn.closeConnLocked(pc)
		fn.mu.Unlock()
		return
	}
	pc.out = out
	fn.mu.Unlock()
	fn.accepted.Add(1)

	// Each direction closes both sides when it ends, which ends the other.
	// A connection to or from a paused node is forwarded too, but its first
	// frame waits in pipe with the rest until the pause ends.
	fn.wg.Add(1)
	go func() {
		defer fn.wg.Done()
		fn.pipe(pc, out, in, frame)
		fn.drop(pc)
	}()
	fn.pipe(pc, in, out, nil)
	fn.drop(pc)
}

func (fn *Net) drop(pc *proxyConn) {
	fn.mu.Lock()
	fn.closeConnLocked(pc)
	fn.mu.Unlock()
}

// quietPort is FreeAddr: its ports are already outside the ephemeral range.
func quietPort(t testing.TB) string { return FreeAddr(t) }
