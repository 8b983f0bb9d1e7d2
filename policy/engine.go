package policy

import (
	"strconv"
	"strings"
	"time"

	"github.com/moat-platform/moat/config"
)

// Bounds of a health check. The engine refuses an interval or timeout below
// 1ms; moat asks for at least a second, because every check is an exec
// through the engine, and a tenant probing every millisecond would load the
// daemon every other tenant shares. The upper bounds catch typos (876000h)
// that would leave a container unchecked for good.
const (
	minHealthInterval = time.Second
	maxHealthInterval = 24 * time.Hour
	minHealthTimeout  = time.Second
	maxHealthTimeout  = time.Hour
)

// maxID is the largest uid or gid the engine starts a container with: it
// refuses ids over 2147483647 (int32) when the container starts, long after
// apply created it.
const maxID = 1<<31 - 1

// engineLimits refuses values that the schema's syntax admits but the engine
// would refuse, or take as something else, at create or start time: the
// rule is that whatever validation accepts, the engine accepts.
func (c *checker) engineLimits() {
	if c.platform != nil {
		c.userIDs(c.platform.Meta, c.platform.Runtime.User, "runtime", "user")
	}
	for _, name := range c.order {
		for _, a := range c.byTenant[name].apps {
			c.userIDs(a.Meta, a.User, "user")
			if h := a.Healthcheck; h != nil {
				c.duration(a.Meta, h.Interval, minHealthInterval, maxHealthInterval, "healthcheck", "interval")
				c.duration(a.Meta, h.Timeout, minHealthTimeout, maxHealthTimeout, "healthcheck", "timeout")
			}
		}
	}
}

// userIDs checks both ids of a "uid:gid"; other spellings are the
// schema's to report.
func (c *checker) userIDs(m config.Meta, user string, path ...any) {
	uid, gid, ok := strings.Cut(user, ":")
	if !ok {
		return
	}
	for _, id := range []string{uid, gid} {
		n, err := strconv.ParseUint(id, 10, 64)
		if err == nil && n <= maxID {
			continue
		}
		if err != nil && !allDigits(id) {
			continue // not a number at all: the schema reports it
		}
		c.add(m.Pos(path...), "hardening.user",
			"user %q has an id over %d, which the engine refuses at start; use ids from 1 to %d", user, maxID, maxID)
		return
	}
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// duration checks a health check duration against its bounds; an absent or
// unparsable value is left to the default or to the schema.
func (c *checker) duration(m config.Meta, s string, lo, hi time.Duration, path ...any) {
	if s == "" {
		return
	}
	d, err := time.ParseDuration(s)
	if err != nil || (d >= lo && d <= hi) {
		return
	}
	c.add(m.Pos(path...), "structure.range",
		"`%s.%s` must be a duration from %s to %s (got %s)", path[0], path[1], shortDur(lo), shortDur(hi), s)
}

// shortDur writes a whole number of hours, minutes or seconds as 24h, not
// time.Duration's 24h0m0s.
func shortDur(d time.Duration) string {
	for _, u := range []struct {
		d time.Duration
		s string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.s
		}
	}
	return d.String()
}
