package config

import (
	"strings"
	"testing"
)

func TestParseMemory(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string // substring of the error, "" for none
	}{
		{"0", 0, ""},
		{"1048576", 1 << 20, ""},
		{"512B", 512, ""},
		{"64MiB", 64 << 20, ""},
		{"512Mi", 512 << 20, ""},
		{"1GiB", 1 << 30, ""},
		{"1Gi", 1 << 30, ""},
		{"2KiB", 2048, ""},
		{"1TiB", 1 << 40, ""},
		{"500M", 500e6, ""},
		{"500MB", 500e6, ""},
		{"1k", 1000, ""},
		{"1K", 1000, ""},
		{"1kB", 1000, ""},
		{"2G", 2e9, ""},
		{"3T", 3e12, ""},
		{"8388607TiB", 8388607 << 40, ""},
		{"8388608TiB", 0, "too large"},
		{"1.5GiB", 0, "no fractions"},
		{"0.5KiB", 0, "no fractions"},
		{"9999999999TiB", 0, "too large"},
		{"99999999999999999999", 0, "too large"},
		{"64mib", 0, "unknown unit"},
		{"512m", 0, "ambiguous"},
		{"1g", 0, "ambiguous"},
		{"1gb", 0, "ambiguous"},
		{"64 MiB", 0, "unknown unit"},
		{"64XB", 0, "unknown unit"},
		{"", 0, "want a whole number"},
		{"MiB", 0, "want a whole number"},
		{".5MiB", 0, "want a whole number"},
		{"-1MiB", 0, "want a whole number"},
		{"+1MiB", 0, "want a whole number"},
		{"1e3", 0, "unknown unit"},
		{strings.Repeat("9", 40), 0, "too large"},
	}
	for _, tt := range tests {
		got, err := ParseMemory(tt.in)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("ParseMemory(%q): %v", tt.in, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ParseMemory(%q) = %d, %v; want error with %q", tt.in, got, err, tt.err)
		case got != tt.want:
			t.Errorf("ParseMemory(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestFormatMemory(t *testing.T) {
	for in, want := range map[int64]string{
		0: "0B", 1000: "1000B", 1024: "1KiB", 1536 << 10: "1536KiB",
		64 << 20: "64MiB", 1 << 30: "1GiB", 3 << 40: "3TiB", -(64 << 20): "-64MiB",
	} {
		if got := FormatMemory(in); got != want {
			t.Errorf("FormatMemory(%d) = %q, want %q", in, got, want)
		}
		if in >= 0 {
			if back, err := ParseMemory(FormatMemory(in)); err != nil || back != in {
				t.Errorf("round trip %d: %d, %v", in, back, err)
			}
		}
	}
}
