package state

// Engines a platform can run on (Desired.Engine). The single-host engine
// is the default; "swarm" drives Docker's Swarm mode (docs/SWARM.md).
const (
	EngineDocker = "docker"
	EngineSwarm  = "swarm"
)

// LabelSecret names the tenant's secret a Swarm secret object is a
// version of; LabelKind is KindSecret and LabelTenant the owner.
const LabelSecret = "org.moat.secret"

// KindSecret is the LabelKind of a Swarm secret object.
const KindSecret = "secret"

// MountSecret is the Mount.Type of a Swarm secret: Source is the secret
// object's name (a version, see SecretSpec), Target the file path in the
// container. The engine mounts it read-only (mode 0400) owned by the
// container's user.
const MountSecret = "secret"

// SwarmSpec is what a Swarm service adds to a container spec. nil on the
// single-host engine; hashed as its own part only when set, so that specs
// of single-host platforms keep their hashes.
type SwarmSpec struct {
	// Placement are the service's placement constraints
	// ("node.labels.moat.tenant==acme"), sorted; from the tenant registry
	// (platform-owned), never from a tenant's own files.
	Placement []string `json:"placement,omitempty"`
	// UpdateOrder of a rolling update: "start-first" (the new task runs
	// before the old one stops: no moment without a running task) or
	// "stop-first" (an app that must never run twice at once, e.g. one
	// that owns a volume).
	UpdateOrder string `json:"updateOrder"`
}

// SecretSpec is one version of a tenant secret as a Swarm secret object.
// Swarm secrets are immutable, so each value is its own object, named
// "<service-scope name>--<secret>--<first 12 hex of Digest>": a rotation
// creates a new object and updates the services that mount it.
type SecretSpec struct {
	Name string `json:"name"`
	// Source is the value's path in the host's secret store. The engine
	// reads it when it creates the object and never writes it anywhere
	// else; a plan holds the path and the digest, never the value.
	Source string            `json:"source"`
	Digest string            `json:"digest"` // keyed hash of the value
	Labels map[string]string `json:"labels"`
}

// Secret is a live Swarm secret object (the list never carries values).
type Secret struct {
	ID     string            `json:"id"`
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}
