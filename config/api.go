package config

// Limits bound what the loader accepts from an untrusted repository.
type Limits struct {
	MaxFileBytes  int64 // per file (default 1 MiB)
	MaxFiles      int   // YAML files in the repo (default 20,000)
	MaxTotalBytes int64 // all YAML files together (default 256 MiB)
	MaxNodes      int   // YAML nodes per document after alias expansion (default 10,000)
	MaxDepth      int   // nesting depth per document (default 64)
	// MaxTotalNodes bounds the YAML nodes of the whole repository after
	// alias expansion (default 2,000,000, several times a 10,000-app
	// repository). Without it, many small documents that each stay under
	// MaxNodes could still expand a few MiB of aliases into gigabytes.
	MaxTotalNodes int
}

// DefaultLimits are the limits used when a field of Limits is zero.
var DefaultLimits = Limits{
	MaxFileBytes:  1 << 20,
	MaxFiles:      20000,
	MaxTotalBytes: 256 << 20,
	MaxNodes:      10000,
	MaxDepth:      64,
	MaxTotalNodes: 2000000,
}

// withDefaults returns lim with every zero (or negative) field taken from
// DefaultLimits, so callers can set only the limits they care about.
func (lim Limits) withDefaults() Limits {
	d := DefaultLimits
	if lim.MaxFileBytes > 0 {
		d.MaxFileBytes = lim.MaxFileBytes
	}
	if lim.MaxFiles > 0 {
		d.MaxFiles = lim.MaxFiles
	}
	if lim.MaxTotalBytes > 0 {
		d.MaxTotalBytes = lim.MaxTotalBytes
	}
	if lim.MaxNodes > 0 {
		d.MaxNodes = lim.MaxNodes
	}
	if lim.MaxDepth > 0 {
		d.MaxDepth = lim.MaxDepth
	}
	if lim.MaxTotalNodes > 0 {
		d.MaxTotalNodes = lim.MaxTotalNodes
	}
	return d
}

// WithDefaults returns lim with every zero field taken from DefaultLimits:
// the bounds Load applies, for readers that copy a repository for it.
func (lim Limits) WithDefaults() Limits { return lim.withDefaults() }
