package compile

import (
	"strconv"
	"strings"

	"github.com/moat-platform/moat/config"
	"github.com/moat-platform/moat/state"
)

// MoatImage is moat's own image (FROM scratch, the static moat binary;
// built by scripts/build-images.sh moat). moat runs it for its own
// one-shot steps (volume-init) and never pulls it.
const MoatImage = "localhost/moat/moat:1"

// VolumeInitTarget is where the init step mounts the volume it prepares.
const VolumeInitTarget = "/volume"

// VolumeMode is the mode of a tenant volume's root directory: the
// tenant's uid only. Other tenants' uids cannot even list it (and cannot
// mount it either: policy keeps volumes per tenant).
const VolumeMode = "0700"

// KindVolumeInit labels the one-shot container that prepares a volume.
const KindVolumeInit = "volume-init"

// tenantUser is the canonical "uid:gid" the apps of tenant t run as: the
// registry's user, or the default derived from the name when a test built
// the repository without Decode's defaults.
func (c *compiler) tenantUser(t string) (uid, gid uint64, user string, ok bool) {
	u := ""
	if tt := c.tenants[t]; tt != nil {
		u = tt.User
	}
	if u == "" {
		u = config.DefaultTenantUser(t)
	}
	return parseUser(u)
}

// parseUser parses a numeric "uid:gid" and returns it in canonical form.
func parseUser(s string) (uid, gid uint64, user string, ok bool) {
	us, gs, found := strings.Cut(s, ":")
	if !found {
		return 0, 0, "", false
	}
	u, err1 := strconv.ParseUint(us, 10, 31)
	g, err2 := strconv.ParseUint(gs, 10, 31)
	if err1 != nil || err2 != nil {
		return 0, 0, "", false
	}
	return u, g, strconv.FormatUint(u, 10) + ":" + strconv.FormatUint(g, 10), true
}

// appUser resolves the user of an app of tenant t: always the tenant's.
// An app that names another user is refused (policy reports it as
// hardening.app-user); its volumes and secrets belong to the tenant's id.
func (c *compiler) appUser(t string, a *config.App, what string) (string, bool) {
	_, _, user, ok := c.tenantUser(t)
	if !ok || isRoot(user) {
		c.errorf("%s: tenant %s has no valid non-root user", what, t)
		return "", false
	}
	if a.User != "" {
		if _, _, au, aok := parseUser(a.User); !aok || au != user {
			c.errorf("%s: user %q is not tenant %s's %s", what, a.User, t, user)
			return "", false
		}
	}
	return user, true
}

// volumeInit is the one-shot step that makes a tenant volume's root
// directory the tenant's (owner uid:gid, VolumeMode), so the tenant's
// apps can write it and no other tenant's uid can. It runs moat's own
// image as root, because only root may chown, with nothing else: no
// network, every capability dropped but CHOWN and FOWNER (chmod of a
// directory another uid owns, on a re-run), no-new-privileges, read-only
// root, small limits. The engine driver runs it on every volume create
// (idempotent: an initialised volume is left as it is).
func (c *compiler) volumeInit(t, volume string) (*state.ContainerSpec, bool) {
	uid, gid, _, ok := c.tenantUser(t)
	if !ok {
		return nil, false
	}
	return &state.ContainerSpec{
		Name:  volume + ".init",
		Image: MoatImage,
		Cmd: []string{"volume-init", "--uid", strconv.FormatUint(uid, 10), "--gid", strconv.FormatUint(gid, 10),
			"--mode", VolumeMode, VolumeInitTarget},
		User: "0:0",
		Labels: map[string]string{
			state.LabelManagedBy: state.ManagedBy,
			state.LabelInstance:  c.instance,
			state.LabelTenant:    t,
			state.LabelKind:      KindVolumeInit,
		},
		Mounts:         []state.Mount{{Type: "volume", Source: volume, Target: VolumeInitTarget}},
		ReadOnlyRootfs: true,
		CapDrop:        []string{"ALL"},
		CapAdd:         []string{"CHOWN", "FOWNER"},
		SecurityOpt:    []string{"no-new-privileges:true"},
		Sysctls:        Sysctls(),
		Memory:         16 << 20,
		NanoCPUs:       100_000_000,
		PidsLimit:      16,
		Restart:        state.Restart{Name: "no"},
	}, true
}
