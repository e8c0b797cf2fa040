package signature

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
)

// Options are the Drain parameters. The zero value of a field means
// Drain3's default.
type Options struct {
	// Depth of the parse tree, counted as Drain3 counts it: the root, the
	// token-count layer, Depth-3 layers keyed by a message's first tokens,
	// and the leaf that holds the clusters. Default 4 (one token layer);
	// minimum 3.
	Depth int
	// Similarity is the fraction of a template's tokens a message must equal
	// to join its cluster. Default 0.4.
	Similarity float64
	// MaxChildren bounds a tree node's children; further first tokens share
	// a <*> child. Default 100.
	MaxChildren int
	// MaxClusters bounds the clusters a Miner holds (0: no bound). Once
	// reached, a message that fits no cluster is not added: Add returns the
	// id of its masked message as a template of its own, with Created false.
	// This keeps memory bounded against a stream of garbage without making
	// ids depend on what was evicted.
	MaxClusters int
}

func (o Options) withDefaults() Options {
	if o.Depth == 0 {
		o.Depth = 4
	}
	if o.Depth < 3 {
		o.Depth = 3
	}
	if o.Similarity == 0 {
		o.Similarity = 0.4
	}
	if o.MaxChildren == 0 {
		o.MaxChildren = 100
	}
	if o.MaxChildren < 2 {
		o.MaxChildren = 2
	}
	return o
}

// Match is a message's signature.
type Match struct {
	// ID is IDOf(Template).
	ID string
	// Template is the cluster's masked template, <*> where its messages
	// differ.
	Template string
	// Previous, when not empty, is the ID the cluster had before this
	// message generalised its template (a token became <*>). Whoever keeps
	// counts by ID merges Previous into ID: the same failure, now known to
	// vary in one more place.
	Previous string
	// Created is true for the first message of a new cluster.
	Created bool
}

// IDOf returns the signature id of a template: the first 16 hex digits of
// the SHA-256 of its text. It depends on the template only, so every
// replica and every restart that arrives at a template names it alike.
func IDOf(template string) string {
	sum := sha256.Sum256([]byte(template))
	return hex.EncodeToString(sum[:8])
}

// Miner clusters error messages into signatures with a Drain parse tree.
// It is safe for concurrent use: masking runs in the caller's goroutine,
// the tree is guarded by a mutex (Match takes it shared).
//
// Ids and generalisation. An id is derived from the template, so a
// cluster's id changes when its template generalises: "Connection to db1
// refused" is a template of its own until "Connection to db2 refused"
// arrives and both become "Connection to <*> refused". Add reports the id
// the cluster had in Match.Previous; a store merges the old id's counts
// into the new one and remembers the alias, so that a replica that has not
// yet seen the second variant and still reports the old id is merged too.
// Two miners fed the same messages in any order reach the same templates
// and so the same ids whenever the clusters' membership does not depend on
// order (in Drain it can, for messages near the similarity threshold). A
// restarted miner should be seeded with the stored templates (Seed), so
// that it continues from the generalised templates instead of rediscovering
// them. Tokens a keep rule protects (a module name) never generalise: they
// are what tells one signature from another.
type Miner struct {
	opt  Options
	pool sync.Pool // *masker

	mu       sync.RWMutex
	root     map[int]*node // by token count
	clusters int
	key      []byte // scratch for the pinned-token key, under mu
}

// node is an inner node of the tree; at the last token layer its
// clusters are grouped by their pinned tokens, which must be equal.
type node struct {
	children map[string]*node
	leaf     map[string][]*cluster // pinned-token key → clusters
}

type cluster struct {
	tokens   []string // pinned tokens keep pinMark
	template string
	id       string
}

// NewMiner returns an empty Miner.
func NewMiner(opt Options) *Miner {
	m := &Miner{opt: opt.withDefaults(), root: make(map[int]*node)}
	m.pool.New = func() any { return new(masker) }
	return m
}

// Add assigns msg (an Extract result) to a signature, creating or
// generalising a cluster as needed.
func (m *Miner) Add(msg string) Match {
	mk := m.pool.Get().(*masker)
	defer m.pool.Put(mk)
	mk.mask(msg)
	toks := mk.tokens()

	m.mu.Lock()
	defer m.mu.Unlock()
	leafNode := m.descend(toks, true)
	m.key = pinKey(m.key[:0], toks)
	group := leafNode.leaf[string(m.key)]
	if c := m.best(group, toks, false); c != nil {
		prev := c.id
		changed := false
		for i, t := range toks {
			if c.tokens[i] != Wildcard && c.tokens[i] != string(t) {
				c.tokens[i] = Wildcard
				changed = true
			}
		}
		if !changed {
			return Match{ID: c.id, Template: c.template}
		}
		c.template = render(c.tokens)
		c.id = IDOf(c.template)
		if c.id == prev {
			prev = ""
		}
		return Match{ID: c.id, Template: c.template, Previous: prev}
	}
	if m.opt.MaxClusters > 0 && m.clusters >= m.opt.MaxClusters {
		tmpl := renderBytes(toks)
		return Match{ID: IDOf(tmpl), Template: tmpl}
	}
	c := newCluster(toks)
	leafNode.leaf[string(m.key)] = append(group, c)
	m.clusters++
	return Match{ID: c.id, Template: c.template, Created: true}
}

// Match finds msg's signature without adding it (a user's report must not
// create or generalise signatures). Placeholders and <*> in a template
// count as equal to anything here, as Drain3's match does; ok is false when
// no cluster is similar enough.
func (m *Miner) Match(msg string) (match Match, ok bool) {
	mk := m.pool.Get().(*masker)
	defer m.pool.Put(mk)
	mk.mask(msg)
	toks := mk.tokens()

	m.mu.RLock()
	defer m.mu.RUnlock()
	n := m.descend(toks, false)
	if n == nil {
		return Match{}, false
	}
	key := pinKey(nil, toks)
	c := m.best(n.leaf[string(key)], toks, true)
	if c == nil {
		return Match{}, false
	}
	return Match{ID: c.id, Template: c.template}, true
}

// Seed adds a stored template (from Match.Template) as a cluster, so that
// a restarted miner continues where the last one stopped; <*> positions
// stay wildcards. Seeding a template the miner already has, or one that a
// cluster absorbs, behaves like Add.
func (m *Miner) Seed(template string) Match {
	return m.Add(template)
}

// Len returns the number of clusters.
func (m *Miner) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.clusters
}

// Templates returns every cluster's signature, for a store to persist.
func (m *Miner) Templates() []Match {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Match
	var walk func(n *node)
	walk = func(n *node) {
		for _, g := range n.leaf {
			for _, c := range g {
				out = append(out, Match{ID: c.id, Template: c.template})
			}
		}
		for _, ch := range n.children {
			walk(ch)
		}
	}
	for _, n := range m.root {
		walk(n)
	}
	return out
}

// descend walks (and with create, grows) the tree to the node that holds
// the clusters for toks. It follows Drain3's add_seq_to_prefix_tree: a
// token with digits goes to the <*> child (it is likely a parameter the
// masker did not catch), and once a node has MaxChildren-1 children, new
// tokens share the <*> child.
func (m *Miner) descend(toks [][]byte, create bool) *node {
	n := m.root[len(toks)]
	if n == nil {
		if !create {
			return nil
		}
		n = &node{}
		m.root[len(toks)] = n
	}
	layers := m.opt.Depth - 3
	for d := 0; d < layers && d < len(toks)-1; d++ {
		t := toks[d]
		if len(t) > 0 && t[0] == pinMark {
			t = t[1:]
		}
		next := n.children[string(t)]
		if next == nil && !create {
			// Drain3's tree_search: an unknown token may be a parameter.
			if next = n.children[Wildcard]; next == nil {
				return nil
			}
		}
		if next == nil {
			key := string(t)
			if hasDigit(t) {
				key = Wildcard
			} else if len(n.children) >= m.opt.MaxChildren-1 && n.children[Wildcard] == nil {
				key = Wildcard
			} else if len(n.children) >= m.opt.MaxChildren {
				key = Wildcard
			}
			next = n.children[key]
			if next == nil {
				if n.children == nil {
					n.children = make(map[string]*node)
				}
				next = &node{}
				n.children[key] = next
			}
		}
		n = next
	}
	if n.leaf == nil {
		if !create {
			return nil
		}
		n.leaf = make(map[string][]*cluster)
	}
	return n
}

// best returns the most similar cluster of group, or nil when none reaches
// the threshold. Similarity is Drain's: the fraction of the template's
// positions where the message has the same token; <*> positions count as
// equal only with params (Match), and break ties otherwise (Drain3's
// fast_match). Pinned positions must be equal, which the group key already
// guarantees for their values; pinMark makes positions agree too.
func (m *Miner) best(group []*cluster, toks [][]byte, params bool) *cluster {
	var (
		bestC     *cluster
		bestSim   = -1.0
		bestParam = -1
	)
	for _, c := range group {
		same, wild := 0, 0
		for i, t := range c.tokens {
			switch {
			case t == Wildcard:
				wild++
			case t == string(toks[i]):
				same++
			case params && isPlaceholder(t):
				wild++
			}
		}
		if params {
			same += wild
		}
		sim := 1.0 // the empty message's one cluster
		if len(c.tokens) > 0 {
			sim = float64(same) / float64(len(c.tokens))
		}
		if sim > bestSim || (sim == bestSim && wild > bestParam) {
			bestC, bestSim, bestParam = c, sim, wild
		}
	}
	if bestC == nil || bestSim < m.opt.Similarity {
		return nil
	}
	return bestC
}

func isPlaceholder(t string) bool {
	for _, p := range &placeholders {
		if t == p {
			return true
		}
	}
	return false
}

// pinKey appends the pinned tokens of toks (with their positions implied by
// order and pinMark) to key.
func pinKey(key []byte, toks [][]byte) []byte {
	for i, t := range toks {
		if len(t) > 0 && t[0] == pinMark {
			key = append(key, byte(i))
			key = append(key, t...)
		}
	}
	return key
}

func newCluster(toks [][]byte) *cluster {
	c := &cluster{tokens: make([]string, len(toks))}
	for i, t := range toks {
		c.tokens[i] = string(t)
	}
	c.template = render(c.tokens)
	c.id = IDOf(c.template)
	return c
}

func render(toks []string) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strings.TrimPrefix(t, string(pinMark)))
	}
	return b.String()
}

func renderBytes(toks [][]byte) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 {
			b.WriteByte(' ')
		}
		if len(t) > 0 && t[0] == pinMark {
			t = t[1:]
		}
		b.Write(t)
	}
	return b.String()
}

func hasDigit(t []byte) bool {
	for _, c := range t {
		if isDigit(c) {
			return true
		}
	}
	return false
}
