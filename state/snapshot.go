package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// Snapshot file format: what `moat state export` writes and `moat plan
// --live` reads, so that a PR check can plan without engine access.
const (
	SnapshotFormat  = "moat-state"
	SnapshotVersion = 1
	// MaxSnapshotSize bounds what ReadSnapshot accepts: a snapshot of a
	// large host is a few MiB; anything much bigger is a wrong file, and
	// reading it whole would only waste memory.
	MaxSnapshotSize = 64 << 20
)

// Snapshot is one observed state with its envelope data: what `moat state
// export` writes and `moat plan --live` reads.
type Snapshot struct {
	// Instance is the platform instance the state was observed for; a
	// reader checks it against the config's instance.
	Instance string
	// CreatedAt is informational; zero omits it.
	CreatedAt time.Time
	Observed  *Observed
}

// snapshotFile is the on-disk envelope. Fingerprint is written on export
// and, when present, verified on read: a hand-edited or damaged snapshot
// is rejected instead of silently planned against. Hand-written snapshots
// (test fixtures) may leave it out.
type snapshotFile struct {
	Format      string     `json:"format"`
	Version     *int       `json:"version"`
	Instance    string     `json:"instance"`
	CreatedAt   *time.Time `json:"createdAt,omitempty"`
	Fingerprint string     `json:"fingerprint,omitempty"`
	Observed    *Observed  `json:"observed"`
}

// validStates are the container states Docker reports.
var validStates = map[string]bool{
	"created": true, "running": true, "paused": true, "restarting": true,
	"removing": true, "exited": true, "dead": true,
}

// WriteSnapshot writes s as an indented, versioned snapshot with its
// fingerprint. The slices are written sorted, so that two exports of the
// same state are byte-identical (apart from createdAt) and diff cleanly.
// s is not modified.
func WriteSnapshot(w io.Writer, s *Snapshot) error {
	switch {
	case s == nil || s.Observed == nil:
		return errors.New("write snapshot: no observed state")
	case s.Instance == "":
		return errors.New("write snapshot: instance is required")
	}
	norm := normalized(s.Observed)
	if err := validateObserved(norm); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	v := SnapshotVersion
	f := snapshotFile{
		Format:      SnapshotFormat,
		Version:     &v,
		Instance:    s.Instance,
		Fingerprint: Fingerprint(norm),
		Observed:    norm,
	}
	if !s.CreatedAt.IsZero() {
		t := s.CreatedAt.UTC()
		f.CreatedAt = &t
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	data = append(data, '\n')
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

// ReadSnapshot reads a snapshot strictly: unknown fields, a wrong format
// or version, missing required fields, duplicate names, unknown container
// states, trailing data, a fingerprint that does not match the content and
// input over MaxSnapshotSize are all errors, each naming what is wrong; on
// error nothing is returned, so nothing can be planned or applied from a
// damaged file. The returned Observed is sorted.
func ReadSnapshot(r io.Reader) (*Snapshot, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSnapshotSize+1))
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	if len(data) > MaxSnapshotSize {
		return nil, fmt.Errorf("read snapshot: larger than %d MiB; not a moat state snapshot?", MaxSnapshotSize>>20)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("read snapshot: empty input")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f snapshotFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("read snapshot: invalid JSON: %w", describeJSONError(data, err))
	}
	if dec.More() {
		return nil, errors.New("read snapshot: unexpected data after the snapshot object")
	}
	// Checking the format before the rest gives "not a snapshot" rather
	// than a confusing field error for e.g. a plan file passed by mistake.
	switch {
	case f.Format == "":
		return nil, fmt.Errorf("read snapshot: missing \"format\" (want %q)", SnapshotFormat)
	case f.Format != SnapshotFormat:
		return nil, fmt.Errorf("read snapshot: format is %q, want %q", f.Format, SnapshotFormat)
	case f.Version == nil:
		return nil, errors.New("read snapshot: missing \"version\"")
	case *f.Version != SnapshotVersion:
		return nil, fmt.Errorf("read snapshot: unsupported version %d (this moat reads version %d)", *f.Version, SnapshotVersion)
	case f.Instance == "":
		return nil, errors.New("read snapshot: missing \"instance\"")
	case f.Observed == nil:
		return nil, errors.New("read snapshot: missing \"observed\"")
	}
	if err := validateObserved(f.Observed); err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	obs := normalized(f.Observed)
	if f.Fingerprint != "" {
		if got := Fingerprint(obs); got != f.Fingerprint {
			return nil, fmt.Errorf("read snapshot: fingerprint mismatch (file says %s, content hashes to %s): the snapshot was modified or damaged after export", f.Fingerprint, got)
		}
	}
	s := &Snapshot{Instance: f.Instance, Observed: obs}
	if f.CreatedAt != nil {
		s.CreatedAt = *f.CreatedAt
	}
	return s, nil
}

// describeJSONError adds the line and column to a JSON syntax or type
// error, which encoding/json reports only as a byte offset.
func describeJSONError(data []byte, err error) error {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		// Offset is just past the offending byte; point at the byte.
		off = max(se.Offset-1, 0)
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 || off > int64(len(data)) {
		return err
	}
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := int(off) - bytes.LastIndexByte(data[:off], '\n')
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}

// validateObserved checks required fields and uniqueness, naming the
// offending entry.
func validateObserved(obs *Observed) error {
	seen := map[string]bool{}
	for i, n := range obs.Networks {
		switch {
		case n.Name == "":
			return fmt.Errorf("observed.networks[%d]: missing \"name\"", i)
		case n.ID == "":
			return fmt.Errorf("observed.networks[%d] (%s): missing \"id\"", i, n.Name)
		case seen[n.Name]:
			return fmt.Errorf("observed.networks[%d]: duplicate network name %q", i, n.Name)
		}
		seen[n.Name] = true
	}
	seen = map[string]bool{}
	ids := map[string]bool{}
	for i, c := range obs.Containers {
		switch {
		case c.Name == "":
			return fmt.Errorf("observed.containers[%d]: missing \"name\"", i)
		case strings.HasPrefix(c.Name, "/"):
			return fmt.Errorf("observed.containers[%d]: name %q must not start with \"/\"", i, c.Name)
		case c.ID == "":
			return fmt.Errorf("observed.containers[%d] (%s): missing \"id\"", i, c.Name)
		case c.State == "":
			return fmt.Errorf("observed.containers[%d] (%s): missing \"state\"", i, c.Name)
		case !validStates[c.State]:
			return fmt.Errorf("observed.containers[%d] (%s): unknown state %q", i, c.Name, c.State)
		case seen[c.Name]:
			return fmt.Errorf("observed.containers[%d]: duplicate container name %q", i, c.Name)
		case ids[c.ID]:
			return fmt.Errorf("observed.containers[%d] (%s): duplicate container id %q", i, c.Name, c.ID)
		}
		for j, n := range c.Networks {
			if n == "" {
				return fmt.Errorf("observed.containers[%d] (%s): networks[%d] is empty", i, c.Name, j)
			}
		}
		seen[c.Name] = true
		ids[c.ID] = true
	}
	if err := validateWeave(obs.Weave); err != nil {
		return err
	}
	seen = map[string]bool{}
	for i, v := range obs.Volumes {
		switch {
		case v.Name == "":
			return fmt.Errorf("observed.volumes[%d]: missing \"name\"", i)
		case seen[v.Name]:
			return fmt.Errorf("observed.volumes[%d]: duplicate volume name %q", i, v.Name)
		}
		seen[v.Name] = true
	}
	return nil
}

// normalized returns a sorted deep-enough copy of obs (slices copied, so
// the caller's value is never reordered) with nil Networks/Containers
// turned into empty slices, so that JSON shows [] rather than null.
func normalized(obs *Observed) *Observed {
	out := &Observed{
		Networks:      slices.Clone(obs.Networks),
		Containers:    slices.Clone(obs.Containers),
		HostFirewall:  obs.HostFirewall,
		Images:        obs.Images,
		GatewayBridge: obs.GatewayBridge,
	}
	if len(obs.Secrets) > 0 {
		out.Secrets = slices.Clone(obs.Secrets)
		sort.Slice(out.Secrets, func(i, j int) bool { return out.Secrets[i].Name < out.Secrets[j].Name })
	}
	if out.Networks == nil {
		out.Networks = []Network{}
	}
	if out.Containers == nil {
		out.Containers = []Container{}
	}
	if obs.Volumes != nil {
		out.Volumes = slices.Clone(obs.Volumes)
		sort.Slice(out.Volumes, func(i, j int) bool { return out.Volumes[i].Name < out.Volumes[j].Name })
	}
	sort.Slice(out.Networks, func(i, j int) bool { return out.Networks[i].Name < out.Networks[j].Name })
	sort.Slice(out.Containers, func(i, j int) bool { return out.Containers[i].Name < out.Containers[j].Name })
	for i := range out.Containers {
		c := &out.Containers[i]
		c.Networks = slices.Clone(c.Networks)
		if c.Networks == nil {
			c.Networks = []string{}
		}
		slices.Sort(c.Networks)
	}
	out.Weave = normalizedWeave(obs.Weave)
	return out
}

// Fingerprint is a stable hash of everything in obs that planning looks
// at: ids, names, states, images, labels, network attachments, network
// driver/internal/subnet and volumes. It does not depend on slice or map
// order. A saved plan records it; applying the plan refuses when the live
// fingerprint differs, since the plan was computed against other state.
//
// The encoding is length-prefixed, so no two different states can encode
// to the same byte stream. Changing it invalidates saved plans (which is
// safe: apply refuses, the user re-plans), so keep the "v1" tag in sync.
func Fingerprint(obs *Observed) string {
	if obs == nil {
		obs = &Observed{}
	}
	h := sha256.New()
	fw := &fpWriter{h: h, buf: make([]byte, 0, 40<<10)}
	fw.str("moat-fingerprint-v1")

	nets := slices.Clone(obs.Networks)
	sort.Slice(nets, func(i, j int) bool {
		if nets[i].Name != nets[j].Name {
			return nets[i].Name < nets[j].Name
		}
		return nets[i].ID < nets[j].ID
	})
	fw.num(len(nets))
	for _, n := range nets {
		fw.str(n.ID)
		fw.str(n.Name)
		fw.str(n.Driver)
		fw.bool(n.Internal)
		fw.str(n.Subnet)
		fw.labels(n.Labels)
	}

	ctrs := slices.Clone(obs.Containers)
	sort.Slice(ctrs, func(i, j int) bool {
		if ctrs[i].Name != ctrs[j].Name {
			return ctrs[i].Name < ctrs[j].Name
		}
		return ctrs[i].ID < ctrs[j].ID
	})
	fw.num(len(ctrs))
	for _, c := range ctrs {
		fw.str(c.ID)
		fw.str(c.Name)
		fw.str(c.Image)
		fw.str(c.State)
		fw.labels(c.Labels)
		ns := slices.Clone(c.Networks)
		slices.Sort(ns)
		fw.num(len(ns))
		for _, n := range ns {
			fw.str(n)
		}
	}

	// "Not listed" and "listed, none" differ for planning (prune or not).
	fw.bool(obs.Volumes != nil)
	vols := slices.Clone(obs.Volumes)
	sort.Slice(vols, func(i, j int) bool { return vols[i].Name < vols[j].Name })
	fw.num(len(vols))
	for _, v := range vols {
		fw.str(v.Name)
		fw.labels(v.Labels)
	}
	// Appended only when present, so fingerprints of Docker-only states
	// (and the plans saved with them) are unchanged.
	if obs.Weave != nil {
		fingerprintWeave(fw, obs.Weave)
	}
	// Image ids and resolved references came later: hashed in tagged
	// trailing sections only when present, so that the fingerprint of a
	// state without them (an older snapshot, a saved plan) is unchanged.
	var withID []int
	for i := range ctrs {
		if ctrs[i].ImageID != "" {
			withID = append(withID, i)
		}
	}
	if len(withID) > 0 {
		fw.str("image-ids")
		fw.num(len(withID))
		for _, i := range withID {
			fw.str(ctrs[i].Name)
			fw.str(ctrs[i].ImageID)
		}
	}
	// An empty map is hashed like none: the file omits it, so it reads
	// back as nil, and with no images nothing resolves either way.
	if len(obs.Images) > 0 {
		fw.str("images")
		fw.labels(obs.Images)
	}
	// Swarm came later still: overlay flags and secret objects, each a
	// tagged section present only when it has something to say.
	var flagged []int
	for i := range nets {
		if nets[i].Attachable || nets[i].Encrypted {
			flagged = append(flagged, i)
		}
	}
	if len(flagged) > 0 {
		fw.str("overlay-flags")
		fw.num(len(flagged))
		for _, i := range flagged {
			fw.str(nets[i].Name)
			fw.bool(nets[i].Attachable)
			fw.bool(nets[i].Encrypted)
		}
	}
	if len(obs.Unenforceable) > 0 {
		fw.str("unenforceable")
		fw.labels(obs.Unenforceable)
	}
	if len(obs.Secrets) > 0 {
		secs := slices.Clone(obs.Secrets)
		sort.Slice(secs, func(i, j int) bool { return secs[i].Name < secs[j].Name })
		fw.str("secrets")
		fw.num(len(secs))
		for _, s := range secs {
			fw.str(s.ID)
			fw.str(s.Name)
			fw.labels(s.Labels)
		}
	}
	if gb := obs.GatewayBridge; gb != nil {
		fw.str("gateway-bridge")
		fw.str(gb.ID)
		fw.str(gb.Name)
		fw.str(gb.Driver)
		fw.str(gb.Subnet)
		fw.str(gb.Bridge)
		fw.str(gb.ICC)
	}
	fw.flush()
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// fpWriter encodes into a buffer that it hands to the hash in large
// chunks, and reuses one key slice: the fingerprint of 10,000 containers
// is computed on every plan, so it must not allocate per field.
type fpWriter struct {
	h    hash.Hash
	buf  []byte
	keys []string
}

func (w *fpWriter) num(n int) {
	w.buf = binary.BigEndian.AppendUint64(w.buf, uint64(n))
	if len(w.buf) >= 32<<10 {
		w.flush()
	}
}

func (w *fpWriter) str(s string) {
	w.num(len(s))
	w.buf = append(w.buf, s...)
}

func (w *fpWriter) flush() {
	w.h.Write(w.buf)
	w.buf = w.buf[:0]
}

func (w *fpWriter) bool(b bool) {
	if b {
		w.num(1)
	} else {
		w.num(0)
	}
}

// labels hashes a map in key order; nil and empty hash the same, as the
// JSON form (omitempty) cannot tell them apart either.
func (w *fpWriter) labels(m map[string]string) {
	w.keys = w.keys[:0]
	for k := range m {
		w.keys = append(w.keys, k)
	}
	slices.Sort(w.keys)
	w.num(len(w.keys))
	for _, k := range w.keys {
		w.str(k)
		w.str(m[k])
	}
}
