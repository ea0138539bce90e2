package statemachine

import (
	"path/filepath"
	"testing"

	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/rsqlite/rsqlite/internal/command"
)

// BenchmarkApplyInsert measures the state machine's cost per entry for
// single-row INSERTs applied in batches, as under concurrent load.
func BenchmarkApplyInsert(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run("batch="+itoa(batch), func(b *testing.B) {
			s := openSM(b, filepath.Join(b.TempDir(), "bench.db"))
			s.mustApply(execCmd("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, payload BLOB)"))
			blob := make([]byte, 100)
			ents := make([]sm.Entry, batch)
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				for j := range ents {
					c := execCmd("INSERT INTO t(name, payload) VALUES (?, ?)", "0123456789abcdef", blob)
					c.ClientID, c.Seq = uint64(j+1), uint64(i+1)
					data, _ := command.Encode(nil, c)
					s.index++
					ents[j] = sm.Entry{Index: s.index, Cmd: data}
				}
				if _, err := s.Update(ents); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
