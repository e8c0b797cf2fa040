package signature

// Signer gives a failed job's error text its signature: Extract, then
// Miner.Add. It is the server's rollout.Signer (Sign(errorText) (id,
// template)); this package imports nothing of ours, so the assertion that
// it satisfies that interface lives with its user.
//
// Generalisation (Match.Previous). When a template generalises, its id
// changes; SignGeneralised reports the id it had, and the stores record it
// as an alias of the new one and read its counts as the new one's, so the
// analysis keeps seeing one signature. What would re-split it on every
// restart — a fresh miner rediscovering the literal template first — is
// what seeding prevents: NewSigner takes the stored templates, and a
// seeded miner answers with the generalised id at once.
//
// Safe for concurrent use.
type Signer struct {
	m *Miner
}

// NewSigner returns a Signer over a new miner with opt, seeded with
// templates (as stored with their signatures, any order: a literal
// template and its generalisation end as the generalisation).
func NewSigner(opt Options, templates []string) *Signer {
	m := NewMiner(opt)
	for _, t := range templates {
		m.Seed(t)
	}
	return &Signer{m: m}
}

// Sign returns the signature of a failed job's error text; id "" when the
// text holds no line to sign.
func (s *Signer) Sign(errorText string) (id, template string) {
	msg := Extract(errorText)
	if msg == "" {
		return "", ""
	}
	m := s.m.Add(msg)
	return m.ID, m.Template
}

// SignGeneralised is Sign, and previous is the id the signature had before
// this text generalised its template ("" when it did not).
func (s *Signer) SignGeneralised(errorText string) (id, template, previous string) {
	msg := Extract(errorText)
	if msg == "" {
		return "", "", ""
	}
	m := s.m.Add(msg)
	return m.ID, m.Template, m.Previous
}

// Match returns the signature of errorText among those already known,
// without adding or generalising one (a user's report); ok is false when
// none is similar enough.
func (s *Signer) Match(errorText string) (id, template string, ok bool) {
	msg := Extract(errorText)
	if msg == "" {
		return "", "", false
	}
	m, ok := s.m.Match(msg)
	return m.ID, m.Template, ok
}

// Len returns the number of signatures the miner holds.
func (s *Signer) Len() int { return s.m.Len() }
