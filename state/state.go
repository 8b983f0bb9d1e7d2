// Package state owns moat's vocabulary of engine resources: the desired
// specs that compile produces (NetworkSpec, ContainerSpec, VolumeSpec) and
// the observed live state (Observed) that an engine or a snapshot file
// yields. Pure types plus the versioned snapshot file format; no engine I/O.
package state

import "strings"

// Labels moat puts on everything it creates. Only objects that carry
// LabelManagedBy=ManagedBy and LabelInstance=<instance> are ever touched.
const (
	LabelManagedBy = "org.moat.managed-by"
	LabelInstance  = "org.moat.instance"
	LabelTenant    = "org.moat.tenant"  // "" for platform objects
	LabelKind      = "org.moat.kind"    // one of the Kind* values below
	LabelApp       = "org.moat.app"     // app or shared service name
	LabelLan       = "org.moat.lan"     // LAN name (networks)
	LabelReplica   = "org.moat.replica" // 1-based replica number
	LabelSpecHash  = "org.moat.spec-hash"
	// LabelSpecParts holds short hashes of the parts of a container spec
	// ("env=1a2b3c4d,image=..."), so that a plan can say which part changed
	// ("spec changed: env") without inspecting the container.
	LabelSpecParts = "org.moat.spec-parts"
	ManagedBy      = "moat"
)

// Values of LabelKind.
const (
	KindApp           = "app"
	KindSharedService = "shared-service"
	KindLan           = "lan"
	KindVolume        = "volume"
	KindSharedVolume  = "shared-volume"
	// KindGateway is a tenant's gateway to a shared service; LabelTenant
	// is the tenant, LabelApp the service.
	KindGateway = "gateway"
	// KindLink is the internal network between one gateway and its
	// service (LabelTenant, LabelApp as for the gateway).
	KindLink = "link"
	// KindEgress is a shared service's network with a route out.
	KindEgress = "egress"
)

// Desired is everything compile wants to exist for one platform instance.
// Each slice is sorted by Name.
type Desired struct {
	Instance   string          `json:"instance"`
	Networks   []NetworkSpec   `json:"networks"`
	Volumes    []VolumeSpec    `json:"volumes"`
	Containers []ContainerSpec `json:"containers"`
	// Weave is what the Weave router must look like; nil unless the
	// platform runs its LANs on Weave.
	Weave *WeaveDesired `json:"weave,omitempty"`
	// HostRules are the host firewall rules of each tenant LAN (empty when
	// the platform turned host protection off or the driver has no host
	// bridge), sorted by Network.
	HostRules []HostRulesSpec `json:"hostRules,omitempty"`
	// Engine is the platform's engine: "" or EngineDocker for one host,
	// EngineSwarm for Swarm mode (containers are services, a spec change
	// is a rolling update, secrets are Swarm secrets).
	Engine string `json:"engine,omitempty"`
	// Secrets are the Swarm secret versions in use, sorted by Name; empty
	// on the single-host engine (secrets are read-only bind mounts there).
	Secrets []SecretSpec `json:"secrets,omitempty"`
}

// OptionBridgeName is the bridge driver option that names the host
// interface of a network; moat sets it so that its firewall rules can
// match a tenant LAN by interface before the network even exists.
const OptionBridgeName = "com.docker.network.bridge.name"

// HostRulesSpec is the host protection of one tenant LAN: rules in moat's
// own chains that keep the LAN's bridge from reaching the host's addresses
// and any published port (see package firewall for the rules themselves).
type HostRulesSpec struct {
	Network string `json:"network"` // the LAN's engine name; the resource name
	Tenant  string `json:"tenant"`
	Bridge  string `json:"bridge"` // host interface of the LAN
	Subnet  string `json:"subnet"`
	// Hash identifies the rule set (firewall.Hash); the rules carry it in
	// their comment, so drift is seen without parsing rule syntax.
	Hash string `json:"hash"`
}

// NetworkSpec is a network to create (a tenant LAN).
type NetworkSpec struct {
	Name     string            `json:"name"`
	Driver   string            `json:"driver"`
	Internal bool              `json:"internal,omitempty"` // no route out
	Subnet   string            `json:"subnet"`
	Gateway  string            `json:"gateway"`
	Options  map[string]string `json:"options,omitempty"` // driver options (ICC on, encryption)
	// IPAMDriver allocates the subnet's addresses; "" is Docker's default.
	// Weave LANs use the router's plugin, which knows the mesh's ring.
	IPAMDriver string            `json:"ipamDriver,omitempty"`
	Labels     map[string]string `json:"labels"`
	// Attachable lets standalone containers join an overlay network.
	Attachable bool `json:"attachable,omitempty"`
}

// VolumeSpec is a named volume to ensure.
type VolumeSpec struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
	// Init, when set, is a one-shot container the engine runs after
	// creating (or finding) the volume, with the volume mounted: it gives a
	// tenant volume to the tenant's uid. The engine adds a random suffix to
	// its name and removes it when it has exited.
	Init *ContainerSpec `json:"init,omitempty"`
}

// ContainerSpec is the full create spec of one container. Everything that
// moat sets is here, so the spec hash covers it; engine and image defaults
// are never part of it (that is what keeps no-op plans empty).
type ContainerSpec struct {
	Name     string            `json:"name"`
	Image    string            `json:"image"`
	Cmd      []string          `json:"cmd,omitempty"`
	Env      []string          `json:"env,omitempty"` // sorted "K=V"
	User     string            `json:"user"`
	Labels   map[string]string `json:"labels"`
	Networks []Endpoint        `json:"networks"` // sorted by Network; first is the primary; empty: network mode "none"
	Mounts   []Mount           `json:"mounts,omitempty"`
	Tmpfs    map[string]string `json:"tmpfs,omitempty"` // path -> options
	Ports    []Port            `json:"ports,omitempty"`

	ReadOnlyRootfs bool     `json:"readOnlyRootfs"`
	CapDrop        []string `json:"capDrop"`
	CapAdd         []string `json:"capAdd,omitempty"`
	SecurityOpt    []string `json:"securityOpt"`
	// Sysctls are set in the container's own network namespace (they are
	// namespaced): moat turns forwarding off so no container can route
	// between the LANs it sits on.
	Sysctls     map[string]string `json:"sysctls,omitempty"`
	Memory      int64             `json:"memory"`    // bytes
	NanoCPUs    int64             `json:"nanoCPUs"`  // 1e9 = one CPU
	PidsLimit   int64             `json:"pidsLimit"` // max processes
	Restart     Restart           `json:"restart"`
	StopTimeout int               `json:"stopTimeout"` // seconds

	Healthcheck *Healthcheck `json:"healthcheck,omitempty"`

	// SecretDigests maps a secret name to a keyed hash of its value (never
	// the value): in the spec hash so that a rotation recreates the app.
	SecretDigests map[string]string `json:"secretDigests,omitempty"`

	// Swarm is set on the Swarm engine only (see SwarmSpec).
	Swarm *SwarmSpec `json:"swarm,omitempty"`
}

// Endpoint attaches a container to a network with DNS aliases.
type Endpoint struct {
	Network string   `json:"network"`
	Aliases []string `json:"aliases,omitempty"`
}

// Mount is a volume or read-only bind (secrets only) in a container.
type Mount struct {
	Type     string `json:"type"` // "volume" | "bind"
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly"`
}

// Port publishes a container port on HostIP:HostPort.
type Port struct {
	HostIP        string `json:"hostIP"`
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
}

// Restart is the restart policy; moat always bounds on-failure retries.
type Restart struct {
	Name       string `json:"name"`
	MaxRetries int    `json:"maxRetries"`
}

// Healthcheck is an exec health check; durations in nanoseconds.
type Healthcheck struct {
	Test     []string `json:"test"`
	Interval int64    `json:"interval"`
	Timeout  int64    `json:"timeout"`
	Retries  int      `json:"retries"`
}

// Observed is one snapshot of live state, taken once per run: a container
// list and a network list (and a volume list only when volumes may be
// pruned). Slices are sorted by Name.
type Observed struct {
	Networks   []Network   `json:"networks"`
	Containers []Container `json:"containers"`
	// Volumes is nil when the snapshot did not list volumes. Not
	// omitempty: "listed, none" ([]) and "not listed" (null) plan
	// differently, so the file must keep them apart.
	Volumes []Volume `json:"volumes"`
	// Weave is the Weave Net router's live state; nil unless the platform
	// runs its LANs on Weave.
	Weave *Weave `json:"weave,omitempty"`
	// Images maps an image reference as the engine lists it (a repo tag
	// "repo:tag" or a repo digest "repo@sha256:...") to the id of the image
	// it names now, from one image list per observe. nil when not observed
	// (a snapshot from an older moat): image drift is then not checked.
	Images map[string]string `json:"images,omitempty"`
	// HostFirewall is moat's part of the host firewall for this instance;
	// nil when it was not observed (a snapshot without it, an engine with
	// no host firewall): then no host rule operation is planned.
	HostFirewall *HostFirewall `json:"hostFirewall,omitempty"`
	// Secrets are the instance's Swarm secret objects; nil on the
	// single-host engine.
	Secrets []Secret `json:"secrets,omitempty"`
	// Unenforceable maps an audit check to why no engine call can fix it
	// on this engine (a Swarm service cannot limit swap, nor ask for
	// no-new-privileges before API 1.44). Set with the inspection: the
	// audit still reports those findings, but a plan does not answer them
	// with an update that would change nothing and come back every run.
	Unenforceable map[string]string `json:"unenforceable,omitempty"`
	// GatewayBridge is the docker_gwbridge network of the Swarm node moat
	// talks to, as listed (Name, ID, Driver, Subnet, Bridge: its host
	// interface, ICC); nil on one host, when the node has none, or when
	// not observed. Every task on a non-internal overlay is attached to
	// it and its gateway is the host: host protection on Swarm needs its
	// interface to be GatewayBridgeInterface (docs/SWARM.md).
	GatewayBridge *Network `json:"gatewayBridge,omitempty"`
}

// GatewayBridgeNetwork is the network Swarm attaches every task with a
// route out to (one per node, local scope), and GatewayBridgeInterface
// the host interface moat's host protection needs it to have: created by
// the operator before `docker swarm init` or `join` with
// com.docker.network.bridge.name=moat-gwbridge, it matches the "moat+"
// jumps into moat's chains like every LAN bridge.
const (
	GatewayBridgeNetwork   = "docker_gwbridge"
	GatewayBridgeInterface = "moat-gwbridge"
)

// HostFirewall is what the host's firewall holds of one instance's rules.
type HostFirewall struct {
	// Error is set when the firewall could not be read (not root, no
	// iptables): every desired rule set is then planned, and apply fails
	// before doing anything.
	Error string `json:"error,omitempty"`
	// Jumps is true when both jumps into the instance's chains (from INPUT
	// and DOCKER-USER) are in place; without them no rule has effect.
	Jumps bool `json:"jumps"`
	// Rules maps a network name to its rules found in moat's chains.
	Rules map[string]HostRuleSet `json:"rules,omitempty"`
}

// HostRuleSet is what was found of one network's rules: how many rules
// carry its comment, and the rule-set hashes those comments name.
type HostRuleSet struct {
	Count  int      `json:"count"`
	Hashes []string `json:"hashes"` // sorted, unique
}

// Network is a live network as listed by the engine.
type Network struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Driver   string `json:"driver"`
	Internal bool   `json:"internal,omitempty"`
	Subnet   string `json:"subnet,omitempty"`
	// Bridge is the host interface name moat asked for (OptionBridgeName).
	Bridge string `json:"bridge,omitempty"`
	// ICC is the bridge's inter-container option as listed ("" unset).
	ICC    string            `json:"icc,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	// Attachable and Encrypted are an overlay network's flags as listed:
	// a tenant overlay made attachable by hand would let any container
	// started on a Swarm node join it.
	Attachable bool `json:"attachable,omitempty"`
	Encrypted  bool `json:"encrypted,omitempty"`
}

// Container is a live container as listed by the engine. The snapshot holds
// every container attached to a managed network and every managed
// container; unmanaged ones matter only for "attached to a tenant LAN".
type Container struct {
	ID    string `json:"id"`
	Name  string `json:"name"` // without the leading "/"
	Image string `json:"image"`
	// ImageID is the id of the image the container runs (the list
	// carries it); compared with Observed.Images[spec image] it shows a
	// tag that moved since the container was created.
	ImageID string            `json:"imageID,omitempty"`
	State   string            `json:"state"` // created|running|paused|restarting|removing|exited|dead
	Labels  map[string]string `json:"labels,omitempty"`
	// Networks are the names of the networks it is attached to, sorted.
	Networks []string `json:"networks"`
	// NetworkIDs maps an attached network's name to the network id its
	// endpoint points at. A stopped container keeps the endpoint of a
	// network removed by hand; the id then names no live network, and the
	// container cannot start until the endpoint is replaced.
	NetworkIDs map[string]string `json:"networkIDs,omitempty"`
	// Volumes are the named volumes it mounts, sorted (the list carries
	// them): what a plan without a volume list knows of volumes.
	Volumes []string `json:"volumes,omitempty"`
	// Addresses maps a network it is attached to to its IPv4 address there
	// (when the engine assigned one). Not part of the fingerprint: only
	// reports look at it.
	Addresses map[string]string `json:"addresses,omitempty"`
	// Inspect holds the security-relevant settings of the live container;
	// nil unless the snapshot was taken with inspection (moat audit, apply
	// --audit): the list does not carry them.
	Inspect *Inspect `json:"inspect,omitempty"`
}

// Inspect is what an audit compares of a live container: the settings the
// CIS Docker Benchmark's section 5 is about. Never environment values or
// file contents (a snapshot holds no secret).
type Inspect struct {
	Privileged     bool              `json:"privileged,omitempty"`
	CapAdd         []string          `json:"capAdd,omitempty"`
	CapDrop        []string          `json:"capDrop,omitempty"`
	ReadOnlyRootfs bool              `json:"readOnlyRootfs,omitempty"`
	User           string            `json:"user,omitempty"`
	Memory         int64             `json:"memory,omitempty"`
	MemorySwap     int64             `json:"memorySwap,omitempty"`
	NanoCPUs       int64             `json:"nanoCPUs,omitempty"`
	CPUQuota       int64             `json:"cpuQuota,omitempty"`
	PidsLimit      int64             `json:"pidsLimit,omitempty"`
	SecurityOpt    []string          `json:"securityOpt,omitempty"`
	NetworkMode    string            `json:"networkMode,omitempty"`
	PidMode        string            `json:"pidMode,omitempty"`
	IpcMode        string            `json:"ipcMode,omitempty"`
	UTSMode        string            `json:"utsMode,omitempty"`
	UsernsMode     string            `json:"usernsMode,omitempty"`
	CgroupnsMode   string            `json:"cgroupnsMode,omitempty"`
	Devices        []string          `json:"devices,omitempty"` // host paths
	Mounts         []Mount           `json:"mounts,omitempty"`  // Source: volume name or host path
	Ports          []Port            `json:"ports,omitempty"`
	Restart        Restart           `json:"restart"`
	Sysctls        map[string]string `json:"sysctls,omitempty"`
}

// Volume is a live named volume.
type Volume struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Managed reports whether labels mark an object as moat's for instance.
func Managed(labels map[string]string, instance string) bool {
	return labels[LabelManagedBy] == ManagedBy && labels[LabelInstance] == instance
}

// ContainerLabels returns the labels to believe for a listed container.
// On Swarm no container is moat's (its objects are services, which carry
// their labels in their own spec), so "<instance>--" names are not
// believed either: a hand-started container is unmanaged whatever its
// image says.
// The engine's container list merges the image's labels into the
// container's, so an image built with moat's labels would make any
// container made from it look like moat's. Every container moat creates is
// named "<instance>.<...>"; one that carries the instance's labels under
// another name has them from its image, and is treated as unmanaged: its
// moat labels are dropped.
func ContainerLabels(name string, labels map[string]string, instance string) map[string]string {
	if !Managed(labels, instance) || strings.HasPrefix(name, instance+".") {
		return labels
	}
	out := make(map[string]string, len(labels))
	for k, v := range labels {
		if !strings.HasPrefix(k, "org.moat.") {
			out[k] = v
		}
	}
	return out
}

// ResolveImage returns the id of the image ref names in images, or "" when
// it is not there (not pulled, or not observed). References are looked up
// as the engine lists them: a reference without tag or digest means
// ":latest", and Docker Hub's default prefixes are dropped.
func ResolveImage(images map[string]string, ref string) string {
	if images == nil || ref == "" {
		return ""
	}
	if id, ok := images[ref]; ok {
		return id
	}
	r := strings.TrimPrefix(strings.TrimPrefix(ref, "docker.io/"), "library/")
	if !strings.Contains(r, "@") && !strings.Contains(r[strings.LastIndex(r, "/")+1:], ":") {
		r += ":latest"
	}
	return images[r]
}
