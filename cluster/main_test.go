package cluster

import (
	"os"
	"testing"

	"github.com/rsqlite/rsqlite/internal/leakcheck"
)

func TestMain(m *testing.M) { os.Exit(leakcheck.Main(m)) }
