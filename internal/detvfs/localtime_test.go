package detvfs

import (
	"database/sql"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// PinLocaltime is process-wide and cannot be undone, so the check runs in a
// child process started with TZ=America/New_York.
func TestPinLocaltime(t *testing.T) {
	if os.Getenv("DETVFS_PIN_CHILD") == "1" {
		pinLocaltimeChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPinLocaltime$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "DETVFS_PIN_CHILD=1", "TZ=America/New_York")
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatalf("child failed: %v", err)
	}
	if strings.Contains(string(out), "--- SKIP") {
		t.Skip("child skipped")
	}
}

func pinLocaltimeChild(t *testing.T) {
	_, shim := openShim(t, "")
	plain := openDSN(t, "file:"+t.TempDir()+"/p.db?vfs=unix")
	const q = `SELECT datetime(0,'unixepoch','localtime'), datetime('1970-01-01 00:00:00','utc'),
		datetime('2020-07-01 12:00:00','localtime')`
	eval := func(db *sql.DB) (loc, utc, summer string) {
		t.Helper()
		if err := db.QueryRow(q).Scan(&loc, &utc, &summer); err != nil {
			t.Fatal(err)
		}
		return
	}
	if loc, _, _ := eval(shim); loc != "1969-12-31 19:00:00" {
		t.Skipf("time zone database not available: localtime gave %s", loc)
	}
	PinLocaltime()
	PinLocaltime() // idempotent
	for name, db := range map[string]*sql.DB{"shim": shim, "plain": plain} {
		loc, utc, summer := eval(db)
		if loc != "1970-01-01 00:00:00" || utc != "1970-01-01 00:00:00" || summer != "2020-07-01 12:00:00" {
			t.Errorf("%s after PinLocaltime: localtime=%s utc=%s summer=%s", name, loc, utc, summer)
		}
	}
}
