package policy

import "github.com/moat-platform/moat/diag"

// rules is the part of the catalogue this package reports: everything that
// needs more than one document. Package schema owns the per-document rules
// (structure.*, most hardening.*, images.*, access.mode-value, ...).
var rules = []diag.Rule{
	// Ownership: which documents are believed at all.
	{ID: "ownership.platform", Area: "ownership",
		Summary: "the repository has no Platform document, or more than one",
		Fix:     "keep exactly one Platform document outside tenants/ (platform.yaml)"},
	{ID: "ownership.platform-kind-in-tenant", Area: "ownership",
		Summary: "a Platform, Tenant, SharedService or SharedVolume document under tenants/ (a tenant granting itself a quota, block or grant)",
		Fix:     "remove it; only the platform registers tenants and grants, outside tenants/"},
	{ID: "ownership.tenant-kind-outside", Area: "ownership",
		Summary: "a Lan, App or Volume document outside tenants/<tenant>/",
		Fix:     "move it into the folder of the tenant it belongs to"},
	{ID: "ownership.no-tenant-folder", Area: "ownership",
		Summary: "a document in a file directly in tenants/, which belongs to no tenant",
		Fix:     "move the file into tenants/<tenant>/"},
	{ID: "ownership.other-tenant", Area: "ownership",
		Summary: "a document in tenants/<t>/ whose tenant: field names another tenant",
		Fix:     "remove the tenant field; a tenant folder describes only its own tenant"},
	{ID: "ownership.unregistered-tenant", Area: "ownership",
		Summary: "a folder tenants/<t>/ for a tenant the platform has not registered with a Tenant document",
		Fix:     "register the tenant (kind: Tenant outside tenants/) or remove the folder"},

	// Uniqueness.
	{ID: "uniqueness.duplicate", Area: "uniqueness",
		Summary: "two documents of one kind with one name in one scope (tenants, shared services and volumes platform-wide; LANs, apps, volumes per tenant), a LAN listed twice in one app's lans, or two mounts (volumes or secrets) at one path of one app",
		Fix:     "rename or remove one; the message names the first"},
	// uniqueness.reserved-name is registered by package schema, which
	// reports it too (MOAT_* environment variables).

	// Addresses.
	{ID: "addresses.block-outside-pool", Area: "addresses",
		Summary: "a tenant block not inside the platform's network pool",
		Fix:     "choose a block inside network.pool"},
	{ID: "addresses.block-overlap", Area: "addresses",
		Summary: "two tenant blocks that overlap",
		Fix:     "give every tenant a disjoint block"},
	{ID: "addresses.subnet-outside-block", Area: "addresses",
		Summary: "a LAN subnet not inside its tenant's block",
		Fix:     "choose a subnet inside the tenant's block"},
	{ID: "addresses.subnet-overlap", Area: "addresses",
		Summary: "two LAN subnets of one tenant that overlap",
		Fix:     "give every LAN a disjoint subnet"},
	{ID: "addresses.subnet-too-small", Area: "addresses",
		Summary: "a LAN subnet with fewer usable addresses than its gateway, the replicas on it and one shared-service gateway per service used need",
		Fix:     "choose a larger subnet (a shorter prefix) or move apps to another LAN"},

	// Links inside a tenant.
	{ID: "links.unknown-lan", Area: "links",
		Summary: "an app joins a LAN that is not a LAN of its own tenant (another tenant's LAN is refused the same way)",
		Fix:     "declare the LAN in the tenant's folder or remove it from lans"},
	{ID: "links.unknown-app", Area: "links",
		Summary: "talksTo names an app that is not an app of the same tenant",
		Fix:     "name an app of the same tenant or remove the entry"},
	{ID: "links.no-shared-lan", Area: "links",
		Summary: "talksTo names an app that shares no LAN with the caller",
		Fix:     "put both apps on a common LAN"},
	{ID: "links.unknown-volume", Area: "links",
		Summary: "a mount names a volume that is not a Volume of the same tenant",
		Fix:     "declare the Volume in the tenant's folder or fix the name"},
	{ID: "links.uses-without-lan", Area: "links",
		Summary: "an app uses a shared service but joins no LAN (apps with no LAN get no network at all)",
		Fix:     "add a LAN to lans or remove uses"},

	// Access to shared services and volumes.
	{ID: "access.unknown-service", Area: "access",
		Summary: "uses names a shared service that does not exist",
		Fix:     "name an existing SharedService (a shared volume is mounted under volumes instead)"},
	{ID: "access.unknown-shared-volume", Area: "access",
		Summary: "a mount names a shared volume that does not exist",
		Fix:     "name an existing SharedVolume"},
	{ID: "access.not-granted", Area: "access",
		Summary: "a shared service used in a mode, or a shared volume mounted, without the tenant's grant",
		Fix:     "use a granted mode, or have the platform add the grant to the Tenant document"},
	{ID: "access.duplicate-use", Area: "access",
		Summary: "an app uses one shared service twice",
		Fix:     "keep one uses entry per service"},
	{ID: "access.grant-unknown", Area: "access",
		Summary: "a tenant grant names neither a shared service nor a shared volume",
		Fix:     "fix the name or remove the grant"},
	{ID: "access.grant-not-offered", Area: "access",
		Summary: "a tenant grant gives a mode the shared service or volume does not offer",
		Fix:     "grant only modes listed in the service's offers"},

	// Hardening that needs the Platform document.
	{ID: "hardening.cap-exception", Area: "hardening",
		Summary: "a capability exception (an app's capAdd, or an entry of the platform's policy.capabilities) is refused: apps run as their tenant's non-root uid under no-new-privileges, where an added capability never reaches the effective set",
		Fix:     "remove it; to serve a port below 1024, listen on a port >= 1024 and publish or map that one, or lower the engine's net.ipv4.ip_unprivileged_port_start"},

	// Quotas.
	{ID: "quotas.containers", Area: "quotas",
		Summary: "a tenant's apps run more containers (sum of replicas) than its quota",
		Fix:     "lower replicas or ask the platform for a larger quota"},
	{ID: "quotas.cpus", Area: "quotas",
		Summary: "replicas x cpus over a tenant's apps exceed its quota",
		Fix:     "lower replicas or cpus, or ask the platform for a larger quota"},
	{ID: "quotas.memory", Area: "quotas",
		Summary: "replicas x memory over a tenant's apps exceed its quota",
		Fix:     "lower replicas or memory, or ask the platform for a larger quota"},
	{ID: "quotas.pids", Area: "quotas",
		Summary: "replicas x pids over a tenant's apps exceed its quota",
		Fix:     "lower replicas or pids, or ask the platform for a larger quota"},

	// Weave Net (driver weave).
	{ID: "weave.driver", Area: "weave",
		Summary: "driver weave without network.weave, network.weave with another driver, or overlay's encrypted flag on Weave",
		Fix:     "set driver: weave together with network.weave (api at least); Weave encrypts with passwordFile"},
	{ID: "weave.pool-outside-range", Area: "weave",
		Summary: "the platform pool is not inside the Weave router's allocation range (network.weave.range)",
		Fix:     "choose a pool inside the range, or start the router with a wider --ipalloc-range and set range to it"},
	{ID: "weave.unencrypted-peers", Area: "weave",
		Summary: "Weave peers are listed without a password file: the mesh would run unencrypted",
		Fix:     "set network.weave.passwordFile to the file the router's --password comes from"},

	// Secrets and ports.
	{ID: "secrets.duplicate", Area: "secrets",
		Summary: "an app lists one secret twice",
		Fix:     "list each secret once"},
	{ID: "ports.not-allowed", Area: "ports",
		Summary: "an app publishes ports but the platform's policy.publishPorts is false",
		Fix:     "remove ports, or the platform allows publishing"},
	{ID: "ports.conflict", Area: "ports",
		Summary: "a host port published twice on the host (by two apps, twice by one app, or by an app with several replicas)",
		Fix:     "choose another host port, or run one replica"},

	// Swarm (engine: swarm).
	{ID: "swarm.driver", Area: "swarm",
		Summary: "engine swarm without network.driver overlay, driver overlay without engine swarm (overlay networks of standalone containers are not supported), or network.encrypted on a bridge",
		Fix:     "set engine: swarm together with driver: overlay (and encrypted: true for IPsec between nodes), or keep engine docker with driver bridge"},
	{ID: "swarm.publish", Area: "swarm",
		Summary: "published host ports on a Swarm platform: Swarm publishes on every node's 0.0.0.0 through its routing mesh and cannot bind one address",
		Fix:     "remove the app's ports and the platform's publishPorts: true; reach apps through a shared service instead"},
	{ID: "swarm.name", Area: "swarm",
		Summary: "on Swarm, a name that contains \"--\" (the separator of Swarm engine names), or an engine name made of the platform's, tenant's and app's names that is longer than 63 characters (64 for a secret)",
		Fix:     "rename the element, or shorten the names the engine name is made of"},
	{ID: "swarm.placement", Area: "swarm",
		Summary: "a tenant's placement on a platform that is not on Swarm, or a node label name or value that is not letters, digits, '.', '_' or '-'",
		Fix:     "remove placement, set engine: swarm, or fix the label"},
}

func init() { diag.Register(rules...) }
