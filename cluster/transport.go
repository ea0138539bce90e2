package cluster

import (
	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"

	chantrans "github.com/lni/dragonboat/v4/plugin/chan"
)

// localTransport is the in-process transport of a single-node cluster: it
// opens no port, and its addresses ("local-<random>") are just names.
// dragonboat's own factory for it refuses to validate addresses.
type localTransport struct{}

func (localTransport) Create(c config.NodeHostConfig, h raftio.MessageHandler, ch raftio.ChunkHandler) raftio.ITransport {
	return chantrans.NewChanTransport(c, h, ch)
}

func (localTransport) Validate(addr string) bool { return addr != "" }
