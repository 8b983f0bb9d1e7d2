package compile

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"maps"
	"slices"
	"strings"

	"github.com/moat-platform/moat/state"
)

// HashVersion is mixed into every spec hash. Changing how a spec is hashed
// (a field added to a part, a different encoding) changes every hash, and
// so recreates every container on upgrade; TestSpecHashPinned fails first,
// and whoever changes the hashing must bump this version on purpose and
// say so in the release notes.
const HashVersion = "moat-spec-v2"

// Lengths of the hex digests stored in the labels: 64 bits for the whole
// spec (collisions between two specs of one container are what matter,
// not a global space), 32 bits per part (display only).
const (
	hashLen = 16
	partLen = 8
)

// Parts of a container spec, hashed separately so a plan can say which
// part changed. Sorted. Every field of state.ContainerSpec is in exactly
// one part, except:
//   - Name: the identity of the container; reconcile matches on it.
//   - Networks: attachments are changed in place (connect/disconnect) and
//     compared with the live container's networks directly. Hashing them
//     would turn a new LAN, or a new tenant granted a shared service, into
//     a recreate of every container involved. Aliases follow from the
//     container's name (app or service name), so they cannot change alone.
//   - the spec-hash and spec-parts labels themselves.
//
// TestHashCoversEveryField fails when a field is added to ContainerSpec
// without deciding which part it belongs to.
var Parts = []string{
	"cmd", "env", "healthcheck", "image", "labels", "limits", "mounts",
	"ports", "restart", "secrets", "security", "swarm", "tmpfs", "user",
}

// partSwarm is hashed only when the spec has a Swarm part: single-host
// specs keep the hashes (and so the containers) they had before Swarm
// support, with no HashVersion bump.
const partSwarm = "swarm"

// SpecHash returns the spec hash of a container spec and its parts label
// ("cmd=1a2b3c4d,env=..."). It depends only on what moat sets, never on
// engine or image defaults, and not on the order of fields that are sets
// (env, mounts, ports, capabilities, security options, map keys).
func SpecHash(s *state.ContainerSpec) (hash, parts string) {
	e := encoder{buf: make([]byte, 0, 1024)}
	whole := sha256.New()
	e.str(HashVersion)
	whole.Write(e.take())
	var label strings.Builder
	label.Grow(len(Parts) * 16)
	first := true
	for _, name := range Parts {
		if name == partSwarm && s.Swarm == nil {
			continue
		}
		e.str(HashVersion)
		e.str(name)
		encodePart(&e, name, s)
		sum := sha256.Sum256(e.take())
		e.str(name)
		whole.Write(e.take())
		whole.Write(sum[:])
		if !first {
			label.WriteByte(',')
		}
		first = false
		label.WriteString(name)
		label.WriteByte('=')
		label.WriteString(hex.EncodeToString(sum[:partLen/2]))
	}
	return hex.EncodeToString(whole.Sum(nil)[:hashLen/2]), label.String()
}

// Stamped returns a copy of s whose spec-hash and spec-parts labels are
// computed from s itself, whatever its labels said. The executor creates
// only stamped specs: a label that says "this container is what the config
// wants" must be moat's conclusion about the spec it creates, never a value
// copied from input (a saved plan file), or an edited spec would look
// current to every later plan.
func Stamped(s state.ContainerSpec) state.ContainerSpec {
	labels := make(map[string]string, len(s.Labels)+2)
	maps.Copy(labels, s.Labels)
	s.Labels = labels
	setHash(&s)
	return s
}

// setHash stores the spec hash and parts in the spec's labels.
func setHash(s *state.ContainerSpec) {
	h, p := SpecHash(s)
	s.Labels[state.LabelSpecHash] = h
	s.Labels[state.LabelSpecParts] = p
}

// encodePart writes the canonical encoding of one part. Each field is
// preceded by its name, so that moving a field between parts or adding one
// changes the hash even when the values happen to line up.
func encodePart(e *encoder, part string, s *state.ContainerSpec) {
	switch part {
	case "cmd":
		e.str("cmd")
		e.strs(s.Cmd) // order matters: argv
	case "env":
		e.str("env")
		e.set(s.Env)
	case "healthcheck":
		e.str("healthcheck")
		h := s.Healthcheck
		e.bool(h != nil)
		if h != nil {
			e.str("test")
			e.strs(h.Test)
			e.str("interval")
			e.int(h.Interval)
			e.str("timeout")
			e.int(h.Timeout)
			e.str("retries")
			e.int(int64(h.Retries))
		}
	case "image":
		e.str("image")
		e.str(s.Image)
	case "labels":
		e.str("labels")
		keys := slices.Sorted(maps.Keys(s.Labels))
		keys = slices.DeleteFunc(keys, func(k string) bool {
			return k == state.LabelSpecHash || k == state.LabelSpecParts
		})
		e.int(int64(len(keys)))
		for _, k := range keys {
			e.str(k)
			e.str(s.Labels[k])
		}
	case "limits":
		e.str("memory")
		e.int(s.Memory)
		e.str("nanoCPUs")
		e.int(s.NanoCPUs)
		e.str("pidsLimit")
		e.int(s.PidsLimit)
	case "mounts":
		ms := make([]string, len(s.Mounts))
		for i, m := range s.Mounts {
			// One string per mount, fields length-prefixed: the set
			// encoding below then sorts mounts without ambiguity.
			var me encoder
			me.str(m.Type)
			// A bind's source is the secret store's host path: where the
			// host keeps its store, not what the config asks for. Left
			// out so that a plan made elsewhere (a pull-request check
			// with no store) computes the same hashes. A Swarm secret's
			// source is its version name, made of the digest, which the
			// "secrets" part covers already.
			if m.Type != "bind" && m.Type != state.MountSecret {
				me.str(m.Source)
			}
			me.str(m.Target)
			me.bool(m.ReadOnly)
			ms[i] = string(me.buf)
		}
		e.str("mounts")
		e.set(ms)
	case "ports":
		ps := make([]string, len(s.Ports))
		for i, p := range s.Ports {
			var pe encoder
			pe.str(p.HostIP)
			pe.int(int64(p.HostPort))
			pe.int(int64(p.ContainerPort))
			pe.str(p.Protocol)
			ps[i] = string(pe.buf)
		}
		e.str("ports")
		e.set(ps)
	case "restart":
		e.str("restart")
		e.str(s.Restart.Name)
		e.int(int64(s.Restart.MaxRetries))
		e.str("stopTimeout")
		e.int(int64(s.StopTimeout))
	case "secrets":
		// Digests only: the keyed hash of each value, so a rotation
		// recreates the app while the value never comes near compile.
		e.str("secretDigests")
		e.strMap(s.SecretDigests)
	case "security":
		e.str("readOnlyRootfs")
		e.bool(s.ReadOnlyRootfs)
		e.str("capDrop")
		e.set(s.CapDrop)
		e.str("capAdd")
		e.set(s.CapAdd)
		e.str("securityOpt")
		e.set(s.SecurityOpt)
		e.str("sysctls")
		e.strMap(s.Sysctls)
	case partSwarm:
		e.str("placement")
		e.set(s.Swarm.Placement)
		e.str("updateOrder")
		e.str(s.Swarm.UpdateOrder)
	case "tmpfs":
		e.str("tmpfs")
		e.strMap(s.Tmpfs)
	case "user":
		e.str("user")
		e.str(s.User)
	default:
		panic("compile: unknown spec part " + part)
	}
}

// ChangedParts compares two spec-parts labels and returns the names of the
// parts that differ (sorted), for a cause like "spec changed: env". A part
// present on one side only counts as changed. It returns nil when either
// label is empty or malformed (a container from a moat that did not write
// parts): the caller then only knows that the hash differs.
func ChangedParts(oldParts, newParts string) []string {
	a, okA := parseParts(oldParts)
	b, okB := parseParts(newParts)
	if !okA || !okB {
		return nil
	}
	var out []string
	for k, v := range a {
		if b[k] != v {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func parseParts(label string) (map[string]string, bool) {
	if label == "" {
		return nil, false
	}
	m := map[string]string{}
	for _, kv := range strings.Split(label, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, false
		}
		m[k] = v
	}
	return m, true
}

// encoder is a canonical, unambiguous byte encoding: strings and lists are
// length-prefixed, integers are varints, sets and maps are sorted first.
// It is moat's own (not encoding/json) so that the bytes hashed depend only
// on this file, not on a library's formatting choices.
type encoder struct{ buf []byte }

func (e *encoder) int(v int64) { e.buf = binary.AppendVarint(e.buf, v) }

func (e *encoder) bool(b bool) {
	if b {
		e.buf = append(e.buf, 1)
	} else {
		e.buf = append(e.buf, 0)
	}
}

func (e *encoder) str(s string) {
	e.buf = binary.AppendUvarint(e.buf, uint64(len(s)))
	e.buf = append(e.buf, s...)
}

// strs encodes a list whose order matters. nil and empty are the same.
func (e *encoder) strs(ss []string) {
	e.int(int64(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}

// set encodes a list whose order does not matter.
func (e *encoder) set(ss []string) {
	if !slices.IsSorted(ss) {
		ss = slices.Sorted(slices.Values(ss))
	}
	e.strs(ss)
}

func (e *encoder) strMap(m map[string]string) {
	keys := slices.Sorted(maps.Keys(m))
	e.int(int64(len(keys)))
	for _, k := range keys {
		e.str(k)
		e.str(m[k])
	}
}

// take returns the bytes written so far and starts over, reusing the
// buffer: the caller must consume the result before the next write.
func (e *encoder) take() []byte {
	b := e.buf
	e.buf = e.buf[:0]
	return b
}
