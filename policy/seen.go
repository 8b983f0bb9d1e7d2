package policy

// smallList is the length up to which lists are scanned rather than hashed.
// Lists in a config (lans, uses, secrets of one app) are short, and Check
// runs over tens of thousands of apps: a map per app would be most of the
// garbage it makes. Past smallList a map takes over, so a hostile list of
// thousands of entries still costs linear time.
const smallList = 16

// seen finds, for entry i of a list visited in order 0, 1, 2, ..., the
// first earlier entry with the same key.
type seen struct {
	key func(int) string
	n   int
	m   map[string]int
}

func newSeen(n int, key func(int) string) seen { return seen{key: key, n: n} }

// first returns the index of the first earlier entry equal to entry i.
// Call it once per i, in increasing order.
func (s *seen) first(i int) (int, bool) {
	k := s.key(i)
	if s.n <= smallList {
		for j := range i {
			if s.key(j) == k {
				return j, true
			}
		}
		return 0, false
	}
	if s.m == nil {
		s.m = make(map[string]int, s.n)
	}
	if j, ok := s.m[k]; ok {
		return j, true
	}
	s.m[k] = i
	return 0, false
}
