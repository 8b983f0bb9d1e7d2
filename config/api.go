package config

// Limits bound what the loader accepts from an untrusted repository.
type Limits struct {
	MaxFileBytes  int64 // per file (default 1 MiB)
	MaxFiles      int   // YAML files in the repo (default 20,000)
	MaxTotalBytes int64 // all YAML files together (default 256 MiB)
	MaxNodes      int   // YAML nodes per document after alias expansion (default 10,000)
	MaxDepth      int   // nesting depth per document (default 64)
}

// DefaultLimits are the limits used when a field of Limits is zero.
var DefaultLimits = Limits{
	MaxFileBytes:  1 << 20,
	MaxFiles:      20000,
	MaxTotalBytes: 256 << 20,
	MaxNodes:      10000,
	MaxDepth:      64,
}
