package policy

import (
	"math"
	"strconv"

	"github.com/moat-platform/moat/config"
)

// A resource of a tenant's quota: how each app adds to it, how a sum is
// written in a message.
type resource struct {
	rule   string
	field  string // key under quota: and resources:
	what   string // for the message
	format func(int64) string
	// per is one container's demand; ok false when the app's value does not
	// parse (the schema reports it) so it adds nothing.
	per func(*config.App) (int64, bool)
	// limit is the tenant's bound; ok false when quota does not set it or
	// it does not parse (the schema requires and checks every field).
	limit func(config.Quota) (int64, bool)
}

var resources = []resource{
	{
		rule: "quotas.containers", field: "containers", what: "containers",
		format: func(n int64) string { return strconv.FormatInt(n, 10) },
		per:    func(*config.App) (int64, bool) { return 1, true },
		limit:  func(q config.Quota) (int64, bool) { return int64(q.Containers), true },
	},
	{
		rule: "quotas.cpus", field: "cpus", what: "CPUs",
		format: func(m int64) string { return strconv.FormatFloat(float64(m)/1000, 'f', -1, 64) },
		per:    func(a *config.App) (int64, bool) { return milli(a.Resources.CPUs) },
		limit:  func(q config.Quota) (int64, bool) { return milli(q.CPUs) },
	},
	{
		rule: "quotas.memory", field: "memory", what: "memory",
		format: config.FormatMemory,
		per:    func(a *config.App) (int64, bool) { return memory(a.Resources.Memory) },
		limit:  func(q config.Quota) (int64, bool) { return memory(q.Memory) },
	},
	{
		rule: "quotas.pids", field: "pids", what: "pids",
		format: func(n int64) string { return strconv.FormatInt(n, 10) },
		per:    func(a *config.App) (int64, bool) { return int64(a.Resources.Pids), a.Resources.Pids >= 0 },
		limit:  func(q config.Quota) (int64, bool) { return int64(q.Pids), q.Pids >= 0 },
	},
}

// quotas sums replicas x resources over each tenant's apps and reports each
// exceeded resource once, at the app (in repository order) whose demand
// takes the sum past the quota, with the tenant's total in the message.
// Shared services and moat's gateways are the platform's and do not count.
func (c *checker) quotas() {
	for _, name := range c.order {
		v := c.byTenant[name]
		t := v.tenant
		if t == nil || t.Partial {
			continue // a quota that did not decode is the schema's finding
		}
		for _, r := range resources {
			limit, ok := r.limit(t.Quota)
			if !ok || !present(t.Meta, "quota", r.field) {
				continue
			}
			var sum int64
			var crossed *config.App
			for _, a := range v.apps {
				per, ok := r.per(a)
				if !ok {
					continue
				}
				sum = satAdd(sum, satMul(per, replicas(a)))
				if crossed == nil && sum > limit {
					crossed = a
				}
			}
			if crossed == nil {
				continue
			}
			at := crossed.Pos("resources", r.field)
			if r.field == "containers" {
				at = crossed.Pos("replicas")
			}
			c.add(at, r.rule,
				"tenant %s's apps need %s %s in total but its quota.%s is %s; the sum first exceeds it at app %s: lower replicas or resources, or ask the platform for a larger quota",
				v.name, r.format(sum), r.what, r.field, r.format(limit), crossed.Name)
		}
	}
}

// replicas is how many containers an app runs. Decode sets the default of 1
// when the key is absent; a negative count is the schema's to refuse.
func replicas(a *config.App) int64 {
	return int64(max(a.Replicas, 0))
}

// milli turns CPUs into integer thousandths so sums are exact (0.1 x 3 is
// 0.3, not 0.30000000000000004). NaN and negatives do not parse; huge
// values saturate rather than overflow.
func milli(cpus float64) (int64, bool) {
	if math.IsNaN(cpus) || cpus < 0 {
		return 0, false
	}
	m := math.Round(cpus * 1000)
	if m >= math.MaxInt64/2 {
		return math.MaxInt64 / 2, true
	}
	return int64(m), true
}

func memory(s string) (int64, bool) {
	n, err := config.ParseMemory(s)
	return n, err == nil && n >= 0
}

// satAdd and satMul keep non-negative sums from wrapping around: a hostile
// replicas: 2000000000 with memory: 1TiB must exceed the quota, not become
// negative and pass.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func satMul(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}
