// Package config owns the typed model of a moat config repository and the
// loader that reads one from an fs.FS (a directory now, a git commit tree
// later). It does no validation beyond YAML syntax and hostile-input limits:
// package schema (CUE, per document) and package policy (Go, across
// documents) judge the model; package validate runs the whole pipeline.
package config

import "github.com/moat-platform/moat/diag"

// Kinds of document. Platform kinds live outside tenants/; tenant kinds live
// only under tenants/<tenant>/.
const (
	KindPlatform      = "Platform"
	KindTenant        = "Tenant"
	KindSharedService = "SharedService"
	KindSharedVolume  = "SharedVolume"
	KindLan           = "Lan"
	KindApp           = "App"
	KindVolume        = "Volume"
)

// PlatformKinds and TenantKinds split the kinds by owner.
var (
	PlatformKinds = []string{KindPlatform, KindTenant, KindSharedService, KindSharedVolume}
	TenantKinds   = []string{KindLan, KindApp, KindVolume}
)

// Access modes a shared service or shared volume offers and a tenant may be
// granted.
const (
	ReadOnly  = "read-only"
	WriteOnly = "write-only"
	ReadWrite = "read-write"
)

// Meta is common to every document: its kind, name and where it came from.
type Meta struct {
	Kind string `yaml:"kind" json:"kind"`
	Name string `yaml:"name" json:"name"`
	// Src is the document it was decoded from (for positions).
	Src *Document `yaml:"-" json:"-"`
	// Partial marks a document that decoded with type errors (replicas:
	// '2'): the fields in error are zero, the schema reports why. Its name
	// still exists, so other documents that name it get no false error, but
	// rules must not judge its zeroed fields.
	Partial bool `yaml:"-" json:"-"`
}

// Pos returns the position of the field at path inside this document
// (see Document.Pos), or of the document itself when Src is nil.
func (m Meta) Pos(path ...any) diag.Pos {
	if m.Src == nil {
		return diag.Pos{}
	}
	return m.Src.Pos(path...)
}

// Engines a platform can run on (Platform.Engine); the values of
// state.EngineDocker and state.EngineSwarm.
const (
	EngineDocker = "docker"
	EngineSwarm  = "swarm"
)

// Platform is the platform's own settings (platform.yaml, exactly one).
type Platform struct {
	Meta `yaml:",inline"`
	// Engine is what moat drives: "docker" (one host, the default) or
	// "swarm" (Docker's Swarm mode: apps, shared services and gateways
	// become services, LANs encrypted overlays, secrets Swarm secrets).
	Engine   string          `yaml:"engine"`
	Network  PlatformNetwork `yaml:"network"`
	Policy   Policy          `yaml:"policy"`
	Runtime  Runtime         `yaml:"runtime"`
	Gateways Gateways        `yaml:"gateways"`
}

// Gateways configures the per-(tenant, shared service) gateways: moat's
// own image, the address range of the link networks between each gateway
// and its service, the gateways' container limits, and the default
// per-tenant limits a gateway enforces (a Tenant may override them).
type Gateways struct {
	Image     string        `yaml:"image"`     // default localhost/moat/moat:1
	LinkPool  string        `yaml:"linkPool"`  // default: the last 1/16 of network.pool
	Resources Resources     `yaml:"resources"` // default {cpus: 0.25, memory: 32MiB, pids: 64}
	Limits    GatewayLimits `yaml:"limits"`
}

// GatewayLimits are what one tenant may do to one shared service.
type GatewayLimits struct {
	MaxBody     string  `yaml:"maxBody"`     // largest request body (http), e.g. 64KiB
	RPS         float64 `yaml:"rps"`         // requests (http) or connections (tcp) per second
	Burst       int     `yaml:"burst"`       // requests allowed at once above the rate
	Connections int     `yaml:"connections"` // concurrent connections
}

// PlatformNetwork says how tenant LANs are built.
type PlatformNetwork struct {
	Driver    string `yaml:"driver"`    // bridge (default) | overlay | weave
	Pool      string `yaml:"pool"`      // CIDR every tenant block lies inside
	Encrypted bool   `yaml:"encrypted"` // overlay only: IPsec between hosts
	// HostProtection keeps tenant LANs from reaching the host's addresses
	// and published ports (firewall rules in moat's own chains; bridge
	// driver). Default true; false turns it off.
	HostProtection bool `yaml:"hostProtection"`
	// Weave configures the Weave Net router when Driver is weave.
	Weave *WeaveNetwork `yaml:"weave"`
}

// WeaveNetwork is how moat finds and checks the host's Weave Net router.
// moat does not start the router; it creates the LANs through the
// router's Docker plugin, reads the router's state and keeps its peers.
type WeaveNetwork struct {
	// API is the router's HTTP API: a loopback host:port or an absolute
	// unix socket path (it has no authentication).
	API string `yaml:"api"`
	// Plugin is the Docker driver name of the router's local-scope plugin
	// (the name of its socket in /run/docker/plugins), used as both the
	// network and the IPAM driver. Default weavemesh.
	Plugin string `yaml:"plugin"`
	// Bridge is the router's bridge on this host (its addresses are what
	// `weave expose` added). Default weave.
	Bridge string `yaml:"bridge"`
	// Range is the router's --ipalloc-range; the pool must lie inside it.
	Range string `yaml:"range"`
	// PasswordFile is where the host keeps the mesh password (the router
	// is started with it); required when Peers is not empty.
	PasswordFile string `yaml:"passwordFile"`
	// Peers are the addresses (host:port) the router must be connected
	// to; any other target is forgotten.
	Peers []string `yaml:"peers"`
}

// Policy is what the platform allows tenants.
type Policy struct {
	Images         []string       `yaml:"images"`         // allowed image prefixes
	RequireDigest  bool           `yaml:"requireDigest"`  // images must be pinned @sha256:
	PublishPorts   bool           `yaml:"publishPorts"`   // may apps publish host ports
	PublishAddress string         `yaml:"publishAddress"` // host IP published ports bind to (default 127.0.0.1)
	Capabilities   []CapException `yaml:"capabilities"`   // the only way to add a capability
}

// CapException allows the named capabilities for one app of one tenant.
type CapException struct {
	Tenant string   `yaml:"tenant"`
	App    string   `yaml:"app"`
	Add    []string `yaml:"add"`
}

// Runtime holds engine settings applied to every managed container.
type Runtime struct {
	StopTimeout    int    `yaml:"stopTimeout"`    // seconds before SIGKILL (default 10)
	User           string `yaml:"user"`           // default user "65534:65534"
	RestartRetries int    `yaml:"restartRetries"` // on-failure bound (default 5)
	TmpfsSize      string `yaml:"tmpfsSize"`      // size of /tmp (default 16MiB)
	PruneVolumes   bool   `yaml:"pruneVolumes"`   // remove named volumes no longer in config (default false)
}

// Tenant is the platform's registry entry for one tenant
// (platform-owned: a tenant can never grant itself anything).
type Tenant struct {
	Meta  `yaml:",inline"`
	Block string `yaml:"block"` // CIDR the tenant's LANs live inside
	// User is the "uid:gid" every app of the tenant runs as, and that owns
	// its volumes and secrets; distinct per tenant. Default: derived from
	// the name (DefaultTenantUser).
	User   string              `yaml:"user"`
	Quota  Quota               `yaml:"quota"`
	Grants map[string][]string `yaml:"grants"` // shared service or volume -> modes
	// GatewayLimits override the platform's gateways.limits for this
	// tenant, field by field (a zero or empty field keeps the platform's).
	GatewayLimits GatewayLimits `yaml:"gatewayLimits"`
	// Placement pins the tenant's apps and gateways to Swarm nodes (engine
	// swarm only). It lives here, in the platform-owned registry, so that
	// a tenant can never place itself.
	Placement *Placement `yaml:"placement"`
}

// Placement selects the Swarm nodes a tenant's services may run on.
type Placement struct {
	// NodeLabels become the constraints node.labels.<key>==<value>, all
	// of which a node must carry.
	NodeLabels map[string]string `yaml:"nodeLabels"`
}

// Quota bounds the sum over a tenant's containers (replicas x resources).
type Quota struct {
	CPUs       float64 `yaml:"cpus"`
	Memory     string  `yaml:"memory"` // e.g. 1GiB
	Pids       int     `yaml:"pids"`
	Containers int     `yaml:"containers"`
}

// SharedService is a platform service tenants reach in a granted mode.
type SharedService struct {
	Meta      `yaml:",inline"`
	Image     string            `yaml:"image"`
	Command   []string          `yaml:"command"`
	Protocol  string            `yaml:"protocol"` // http | tcp | udp
	Port      int               `yaml:"port"`
	Offers    []string          `yaml:"offers"`
	Env       map[string]string `yaml:"env"`
	Resources Resources         `yaml:"resources"`
	// Egress gives the service a network with a route out (default
	// false): without it the service is on its link networks only.
	Egress bool `yaml:"egress"`
}

// SharedVolume is platform data mounted read-only into tenant apps.
type SharedVolume struct {
	Meta   `yaml:",inline"`
	Offers []string `yaml:"offers"` // read-only only
}

// Lan is a tenant's virtual LAN: one Docker network.
type Lan struct {
	Meta     `yaml:",inline"`
	Tenant   string `yaml:"tenant"` // optional; must equal the folder's tenant
	Subnet   string `yaml:"subnet"`
	Internet bool   `yaml:"internet"` // false: an internal network, no route out
}

// Volume is a tenant's own named volume.
type Volume struct {
	Meta   `yaml:",inline"`
	Tenant string `yaml:"tenant"`
}

// App is a tenant application: Replicas hardened containers on its LANs.
type App struct {
	Meta        `yaml:",inline"`
	Tenant      string            `yaml:"tenant"`
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Replicas    int               `yaml:"replicas"` // default 1
	Lans        []string          `yaml:"lans"`
	TalksTo     []string          `yaml:"talksTo"`
	Uses        []Use             `yaml:"uses"`
	Volumes     []Mount           `yaml:"volumes"`
	Secrets     []string          `yaml:"secrets"`
	Resources   Resources         `yaml:"resources"`
	Env         map[string]string `yaml:"env"`
	Ports       []Port            `yaml:"ports"`
	CapAdd      []string          `yaml:"capAdd"` // allowed only by a platform CapException
	User        string            `yaml:"user"`   // "uid:gid", never root; default from Runtime
	Healthcheck *Healthcheck      `yaml:"healthcheck"`

	// Refused by the schema whatever their value; decoded so that the
	// schema, not the YAML decoder, reports them with their rule id.
	Privileged  *bool             `yaml:"privileged"`
	Network     string            `yaml:"network"` // "host" etc.: never
	Pid         string            `yaml:"pid"`
	Ipc         string            `yaml:"ipc"`
	Uts         string            `yaml:"uts"`
	Userns      string            `yaml:"userns"`
	Devices     []string          `yaml:"devices"`
	Sysctls     map[string]string `yaml:"sysctls"`
	SecurityOpt []string          `yaml:"securityOpt"`
}

// Use is a grant an app exercises: a shared service in one mode.
type Use struct {
	Service string `yaml:"service"`
	Mode    string `yaml:"mode"`
}

// Mount puts a tenant volume (Volume) or a shared volume (Shared) at Path.
// Host is only here so that the schema can refuse host bind mounts by name.
type Mount struct {
	Volume   string `yaml:"volume"`
	Shared   string `yaml:"shared"`
	Host     string `yaml:"host"`
	Path     string `yaml:"path"`
	ReadOnly bool   `yaml:"readOnly"`
}

// Resources are per-container limits; all three are required for apps.
type Resources struct {
	CPUs   float64 `yaml:"cpus"`
	Memory string  `yaml:"memory"` // e.g. 64MiB, 1GiB, 512M
	Pids   int     `yaml:"pids"`
}

// Port publishes a container port on the host (only where policy allows).
type Port struct {
	Container int    `yaml:"container"`
	Host      int    `yaml:"host"`
	Protocol  string `yaml:"protocol"` // tcp (default) | udp
}

// Healthcheck is an exec health check (the image has no shell).
type Healthcheck struct {
	Command  []string `yaml:"command"`
	Interval string   `yaml:"interval"` // Go duration, default 10s
	Timeout  string   `yaml:"timeout"`  // default 3s
	Retries  int      `yaml:"retries"`  // default 3
}

// Repo is a whole decoded config repository. Slices are sorted by
// (tenant, name) so everything downstream is deterministic.
type Repo struct {
	Platform *Platform // the first Platform document (see Platforms)
	// Platforms is every Platform document in (file, index) order, so
	// policy can report all but the first; Platform is Platforms[0].
	Platforms     []*Platform
	Tenants       []*Tenant
	Services      []*SharedService
	SharedVolumes []*SharedVolume
	Lans          []*Lan
	Volumes       []*Volume
	Apps          []*App
	// Unread holds the owners (a tenant name, or "" for platform-owned
	// files) of documents the loader could not read (a syntax error, a
	// limit): a name another document refers to may be in one, so rules
	// do not call it unknown. Set by validate.Run.
	Unread map[string]bool
	// Digest identifies the revision's content: a hash over every YAML
	// file's path and bytes, set by validate.Run. Plans record it.
	Digest string
}
