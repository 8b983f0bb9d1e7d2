package compile

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// parseMemory parses a memory size: an integer with an optional unit,
// binary (Ki, Mi, Gi, Ti, with or without a trailing B) or decimal (K, M,
// G, T, with or without B; "B" or nothing for bytes), as in Kubernetes.
//
// TODO(lead): private stand-in for config.ParseMemory (config/units.go,
// being written in parallel). Switch to it once it exists and delete this
// file; units_test.go lists the cases both must agree on.
func parseMemory(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], s[i:]
	}
	if num == "" {
		return 0, fmt.Errorf("memory %q: no number", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("memory %q: %w", s, err)
	}
	mul, ok := memoryUnits[unit]
	if !ok {
		return 0, fmt.Errorf("memory %q: unknown unit %q (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)", s, unit)
	}
	if n > math.MaxInt64/mul {
		return 0, fmt.Errorf("memory %q: too large", s)
	}
	return n * mul, nil
}

var memoryUnits = map[string]int64{
	"": 1, "B": 1,
	"K": 1e3, "KB": 1e3, "k": 1e3, "kB": 1e3,
	"M": 1e6, "MB": 1e6,
	"G": 1e9, "GB": 1e9,
	"T": 1e12, "TB": 1e12,
	"Ki": 1 << 10, "KiB": 1 << 10,
	"Mi": 1 << 20, "MiB": 1 << 20,
	"Gi": 1 << 30, "GiB": 1 << 30,
	"Ti": 1 << 40, "TiB": 1 << 40,
}
