package compile

import "testing"

// The cases config.ParseMemory must agree on before parseMemory goes.
func TestParseMemory(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		bad  bool
	}{
		{"", 0, false},
		{"1024", 1024, false},
		{"10B", 10, false},
		{"64MiB", 64 << 20, false},
		{"64Mi", 64 << 20, false},
		{"1GiB", 1 << 30, false},
		{"2TiB", 2 << 40, false},
		{"16KiB", 16 << 10, false},
		{"512M", 512e6, false},
		{"512MB", 512e6, false},
		{"1G", 1e9, false},
		{"1k", 1e3, false},
		{"1.5GiB", 0, true},
		{"64 MiB", 0, true},
		{"MiB", 0, true},
		{"-1MiB", 0, true},
		{"64mib", 0, true},
		{"9999999999TiB", 0, true},
	}
	for _, tt := range tests {
		got, err := parseMemory(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.bad)
		}
	}
}
