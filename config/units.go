package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// memoryUnits maps a suffix to its multiplier. Binary units are the
// Kubernetes and IEC spellings (Ki, KiB); decimal units are SI (k, K, M,
// G, T with or without B). The lowercase one-letter Docker spellings "m"
// and "g" are refused: Docker reads "512m" as MiB while Kubernetes reads
// "m" as milli, and a quota should not depend on which tool a reader knows.
var memoryUnits = map[string]int64{
	"":    1,
	"B":   1,
	"k":   1e3,
	"K":   1e3,
	"kB":  1e3,
	"KB":  1e3,
	"M":   1e6,
	"MB":  1e6,
	"G":   1e9,
	"GB":  1e9,
	"T":   1e12,
	"TB":  1e12,
	"Ki":  1 << 10,
	"KiB": 1 << 10,
	"Mi":  1 << 20,
	"MiB": 1 << 20,
	"Gi":  1 << 30,
	"GiB": 1 << 30,
	"Ti":  1 << 40,
	"TiB": 1 << 40,
}

// ParseMemory parses a memory size such as "64MiB", "1GiB", "512Mi",
// "500M" (decimal) or "1048576" (bytes) into bytes: a non-negative integer
// and a unit, no space, no fraction (write "1536MiB", not "1.5GiB": every
// package that reads sizes, the CUE schema included, then agrees on what a
// size is). An empty string is an error, not 0: to Docker a 0 memory limit
// means unlimited, so a missing size must never slip through as one.
func ParseMemory(s string) (int64, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], s[i:]
	}
	if num == "" {
		return 0, fmt.Errorf("memory size %q: want a whole number and a unit, such as 64MiB or 1GiB", s)
	}
	mult, ok := memoryUnits[unit]
	if !ok {
		switch {
		case strings.HasPrefix(unit, "."):
			return 0, fmt.Errorf("memory size %q: no fractions; use a smaller unit (1536MiB, not 1.5GiB)", s)
		case unit == "m" || unit == "g" || unit == "mb" || unit == "gb":
			u := strings.ToUpper(unit[:1])
			return 0, fmt.Errorf("memory size %q: unit %q is ambiguous; write %siB (binary) or %sB (decimal)", s, unit, u, u)
		}
		return 0, fmt.Errorf("memory size %q: unknown unit %q (use B, KiB, MiB, GiB, TiB, or k, M, G, T)", s, unit)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("memory size %q is too large", s)
	}
	return n * mult, nil
}

// FormatMemory writes bytes in the largest binary unit that divides it
// exactly ("64MiB", "1536KiB", "1000B"), the inverse of ParseMemory, for
// messages such as a quota overrun. Go's % keeps the sign, so negative
// sizes (a difference) format the same way.
func FormatMemory(b int64) string {
	if b == 0 {
		return "0B"
	}
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b%u.size == 0 {
			return fmt.Sprintf("%d%s", b/u.size, u.name)
		}
	}
	return fmt.Sprintf("%dB", b)
}
