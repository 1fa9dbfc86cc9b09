package lease

// NewGoneAtOnce is New without the rule that a later generation proves its
// predecessor gone only a Quarantine after it was first seen: the naive
// variant with which the simulation must fail (doc.go, "Late writes of an
// earlier incarnation").
func NewGoneAtOnce(cfg Config) (*Lease, error) {
	l, err := New(cfg)
	if l != nil {
		l.generationWait = 0
	}
	return l, err
}
