package schema

import (
	"runtime"
	"testing"
)

// TestHeapStable validates the same repository 100 times in one process,
// the way `moat watch` does, and fails if the live heap after GC grew
// between round 10 and round 100: no CUE context, memo or rule table
// state may survive a Check call.
func TestHeapStable(t *testing.T) {
	if testing.Short() {
		t.Skip("100 rounds of Check: skipped with -short")
	}
	docs := genRepo(t, 140, 12, false) // 2,103 documents
	if len(docs) < 2000 {
		t.Fatalf("generated %d documents, want 2,000+", len(docs))
	}
	live := func() uint64 {
		runtime.GC()
		runtime.GC() // the second cycle frees what the first one's finalizers released
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	var at10 uint64
	for round := 1; round <= 100; round++ {
		if ds := Check(docs, defaultOpts); len(ds) != 0 {
			t.Fatalf("round %d: generated repo invalid: %v", round, ds[0])
		}
		switch round {
		case 10:
			at10 = live()
		case 100:
			at100 := live()
			margin := max(at10/20, 2<<20) // 5%, at least 2 MiB of noise
			t.Logf("live heap after round 10: %.1f MiB, after round 100: %.1f MiB", float64(at10)/(1<<20), float64(at100)/(1<<20))
			if at100 > at10+margin {
				t.Errorf("heap grew from %d to %d bytes between round 10 and 100", at10, at100)
			}
		}
	}
}
