package source

import (
	"bytes"
	"cmp"
	"debug/elf"
	"encoding/binary"
	"io"
	"slices"
)

// What an ELF file streaming past is held for, bounded whatever its size:
// the tables readers of its dynamic linking need (ELF and program headers,
// the dynamic section and symbols, their strings and versions) lie in the
// first loadable segment, in the segments the program headers name, and
// in the section header table near the end of the file, with the section
// names just before it. Those ranges are known from the first page, so
// the file is never held whole: at most elfPrefixMax of its beginning and
// a few small ranges, from which elfCapture.pieces picks the tables.
const (
	// elfHead is read before anything is decided: the ELF header and,
	// almost always, the program headers.
	elfHead = 4096
	// elfPrefixMax bounds the beginning of the file that is held (the
	// first loadable segment: in a large C++ library the dynamic symbols
	// and their strings are several megabytes of it).
	elfPrefixMax = 24 << 20
	// elfRangeMax bounds each other range the headers name (a hostile
	// header may claim anything).
	elfRangeMax = 4 << 20
	// elfTail is held before the section header table, for the section
	// names that linkers write just before it.
	elfTail = 64 << 10
)

// elfCapture collects the ranges of one ELF file that may hold its
// dynamic-linking tables, as the file streams past in order.
type elfCapture struct {
	size int64
	// prefix holds the file from offset 0: the first elfHead bytes, then
	// up to prefixEnd once the headers are read. It reuses the builder's
	// buffer across files.
	prefix    []byte
	prefixEnd int64
	decided   bool
	// held are the other ranges, sorted, disjoint and beyond prefixEnd.
	held []heldRange
	got  int64
}

// heldRange is [off, end) of the file, filled as its bytes arrive.
type heldRange struct {
	off, end int64
	b        []byte
}

func newELFCapture(size int64, scratch []byte) *elfCapture {
	return &elfCapture{size: size, prefix: scratch[:0], prefixEnd: min(size, elfHead)}
}

// write takes the file's next bytes.
func (c *elfCapture) write(p []byte) {
	for len(p) > 0 && c.got < c.prefixEnd {
		k := min(int64(len(p)), c.prefixEnd-c.got)
		c.prefix = append(c.prefix, p[:k]...)
		c.got += k
		p = p[k:]
		if !c.decided && c.got >= c.prefixEnd {
			c.decide() // never lowers prefixEnd
		}
	}
	off, end := c.got, c.got+int64(len(p))
	c.got = end
	for i := range c.held {
		r := &c.held[i]
		if r.end <= off {
			continue
		}
		if r.off >= end {
			break
		}
		from, to := max(off, r.off), min(end, r.end)
		if from == r.off+int64(len(r.b)) { // bytes arrive in order
			r.b = append(r.b, p[from-off:to-off]...)
		}
	}
}

// decide reads the ELF and program headers from the first elfHead bytes
// and sets what else is held. A header it cannot read leaves the first
// keepWhole bytes held, as for a file debug/elf cannot parse.
func (c *elfCapture) decide() {
	c.decided = true
	h, ok := readELFHeader(c.prefix)
	if !ok {
		c.prefixEnd = min(c.size, keepWhole)
		return
	}
	var want [][2]int64
	for _, p := range h.progs {
		if p.typ == elf.PT_DYNAMIC || p.typ == elf.PT_INTERP || p.typ == elf.PT_NOTE {
			want = append(want, [2]int64{p.off, p.size})
		}
	}
	if secs, ok := h.sections(c.prefix); ok {
		// The section headers are in the head (Go's linker writes them
		// there): exactly the tables are held, nothing of the code.
		want = append(want, secs...)
		c.held = holdRanges(want, c.prefixEnd, c.size)
		return
	}
	prefixEnd := int64(elfHead)
	for _, p := range h.progs {
		if p.typ == elf.PT_LOAD && p.off == 0 {
			prefixEnd = max(prefixEnd, p.size)
			break
		}
	}
	c.prefixEnd = min(c.size, prefixEnd, elfPrefixMax)
	if want := int(c.prefixEnd) - len(c.prefix); cap(c.prefix)-len(c.prefix) < want {
		c.prefix = slices.Grow(c.prefix, want) // once, not by doubling
	}
	if h.shoff > 0 {
		shsize := h.shsize
		if h.shnum == 0 {
			shsize = elfRangeMax // extended numbering: the count is in section 0
		}
		want = append(want, [2]int64{h.shoff - elfTail, elfTail}, [2]int64{h.shoff, shsize})
	}
	c.held = holdRanges(want, c.prefixEnd, c.size)
}

// wantedSection reports whether readers of the dynamic linking read a
// section of this type and these flags: the dynamic section, symbols,
// versions and notes, the dynamic strings (allocated, unlike the full
// symbol table's) and, told apart by index, the section names.
func wantedSection(typ elf.SectionType, flags elf.SectionFlag, names bool) bool {
	switch typ {
	case elf.SHT_DYNAMIC, elf.SHT_DYNSYM, elf.SHT_GNU_VERDEF, elf.SHT_GNU_VERNEED, elf.SHT_GNU_VERSYM, elf.SHT_NOTE:
		return true
	case elf.SHT_STRTAB:
		return flags&elf.SHF_ALLOC != 0 || names
	}
	return false
}

// holdRanges turns (offset, size) pairs into sorted disjoint ranges with
// room for their bytes, each bounded by elfRangeMax and clipped to
// [from, size).
func holdRanges(want [][2]int64, from, size int64) []heldRange {
	var rs []heldRange
	for _, w := range want {
		a, b := w[0], w[0]+min(w[1], elfRangeMax)
		a, b = max(a, from), min(b, size)
		if a < b {
			rs = append(rs, heldRange{off: a, end: b})
		}
	}
	slices.SortFunc(rs, func(x, y heldRange) int { return cmp.Compare(x.off, y.off) })
	var out []heldRange
	for _, r := range rs {
		if n := len(out); n > 0 && r.off <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, r.end)
			continue
		}
		out = append(out, r)
	}
	for i := range out {
		out[i].b = make([]byte, 0, out[i].end-out[i].off)
	}
	return out
}

// pieces returns what is kept of the file, sharing memory with what was
// held: the caller copies them before the next file. It must be called
// after the last write.
func (c *elfCapture) pieces() []piece {
	held := make(sparse, 0, 1+len(c.held))
	held = append(held, piece{off: 0, b: c.prefix})
	for _, r := range c.held {
		held = append(held, piece{off: r.off, b: r.b})
	}
	return elfPieces(held, c.size)
}

// elfHeader is what decide needs of the ELF header and program headers.
type elfHeader struct {
	bo                        binary.ByteOrder
	is64                      bool
	shoff, shsize             int64
	shentsize, shnum, shnames int
	progs                     []elfProg
}

// sections reads the section headers when head holds them all, and
// returns the (offset, size) of each section wantedSection names.
func (h elfHeader) sections(head []byte) (want [][2]int64, ok bool) {
	entry := 40
	if h.is64 {
		entry = 64
	}
	if h.shoff <= 0 || h.shnum == 0 || h.shentsize < entry || h.shoff+h.shsize > int64(len(head)) {
		return nil, false
	}
	want = append(want, [2]int64{h.shoff, h.shsize})
	for i := range h.shnum {
		sh := head[h.shoff+int64(i*h.shentsize):]
		typ, flags := elf.SectionType(h.bo.Uint32(sh[4:])), uint64(0)
		var off, size uint64
		if h.is64 {
			flags, off, size = h.bo.Uint64(sh[8:]), h.bo.Uint64(sh[0x18:]), h.bo.Uint64(sh[0x20:])
		} else {
			flags, off, size = uint64(h.bo.Uint32(sh[8:])), uint64(h.bo.Uint32(sh[0x10:])), uint64(h.bo.Uint32(sh[0x14:]))
		}
		if off < 1<<62 && size < 1<<62 && wantedSection(typ, elf.SectionFlag(flags), i == h.shnames) {
			want = append(want, [2]int64{int64(off), int64(size)})
		}
	}
	return want, true
}

type elfProg struct {
	typ       elf.ProgType
	off, size int64
}

// readELFHeader reads the ELF header and the program headers found in b
// (the file's first bytes); ok is false when b is not an ELF file of a
// known class and byte order.
func readELFHeader(b []byte) (h elfHeader, ok bool) {
	if len(b) < 52 || !bytes.HasPrefix(b, []byte(elf.ELFMAG)) {
		return h, false
	}
	var bo binary.ByteOrder
	switch elf.Data(b[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		bo = binary.LittleEndian
	case elf.ELFDATA2MSB:
		bo = binary.BigEndian
	default:
		return h, false
	}
	var phoff int64
	var phentsize, phnum int
	switch elf.Class(b[elf.EI_CLASS]) {
	case elf.ELFCLASS64:
		if len(b) < 64 {
			return h, false
		}
		phoff = int64(bo.Uint64(b[0x20:]))
		h.shoff = int64(bo.Uint64(b[0x28:]))
		phentsize, phnum = int(bo.Uint16(b[0x36:])), int(bo.Uint16(b[0x38:]))
		h.shentsize, h.shnum, h.shnames = int(bo.Uint16(b[0x3a:])), int(bo.Uint16(b[0x3c:])), int(bo.Uint16(b[0x3e:]))
	case elf.ELFCLASS32:
		phoff = int64(bo.Uint32(b[0x1c:]))
		h.shoff = int64(bo.Uint32(b[0x20:]))
		phentsize, phnum = int(bo.Uint16(b[0x2a:])), int(bo.Uint16(b[0x2c:]))
		h.shentsize, h.shnum, h.shnames = int(bo.Uint16(b[0x2e:])), int(bo.Uint16(b[0x30:])), int(bo.Uint16(b[0x32:]))
	default:
		return h, false
	}
	h.bo, h.shsize = bo, int64(h.shentsize)*int64(h.shnum)
	if h.shoff < 0 {
		h.shoff = 0
	}
	is64 := elf.Class(b[elf.EI_CLASS]) == elf.ELFCLASS64
	h.is64 = is64
	entry := int64(32)
	if is64 {
		entry = 56
	}
	for i := range phnum {
		at := phoff + int64(i)*int64(phentsize)
		if phoff < 0 || at < 0 || at+entry > int64(len(b)) {
			break // program headers beyond the head: not held
		}
		p := b[at:]
		var pr elfProg
		if is64 {
			pr = elfProg{elf.ProgType(bo.Uint32(p)), int64(bo.Uint64(p[8:])), int64(bo.Uint64(p[0x20:]))}
		} else {
			pr = elfProg{elf.ProgType(bo.Uint32(p)), int64(bo.Uint32(p[4:])), int64(bo.Uint32(p[0x10:]))}
		}
		if pr.off < 0 || pr.size < 0 {
			continue
		}
		h.progs = append(h.progs, pr)
	}
	return h, true
}

// sparse is parts of a file, sorted and disjoint, read as the file: a
// read outside them fails.
type sparse []piece

func (s sparse) ReadAt(p []byte, off int64) (int, error) {
	if b, ok := s.slice(off, int64(len(p))); ok {
		return copy(p, b), nil
	}
	return 0, io.ErrUnexpectedEOF
}

// slice returns the held bytes [off, off+n), if one part holds them all.
func (s sparse) slice(off, n int64) ([]byte, bool) {
	for _, pc := range s {
		if off >= pc.off && off+n <= pc.off+int64(len(pc.b)) {
			return pc.b[off-pc.off : off-pc.off+n], true
		}
	}
	return nil, false
}

// elfPieces picks out of the held parts of an ELF file of the given size
// what readers of its headers and dynamic-linking tables read: the file
// and program headers, the section headers and section names, the
// dynamic section, the dynamic symbols and their strings, symbol
// versions, notes and the interpreter path. A file debug/elf cannot parse
// from them keeps the held beginning, up to keepWhole. The pieces share
// memory with held; the caller copies them.
func elfPieces(held sparse, size int64) (pieces []piece) {
	add := func(off, n uint64) {
		if off >= uint64(size) || n == 0 {
			return
		}
		n = min(n, uint64(size)-off)
		if b, ok := held.slice(int64(off), int64(n)); ok {
			pieces = append(pieces, piece{off: int64(off), n: int64(n), b: b})
		}
	}
	whole := func() []piece {
		b := held[0].b[:min(len(held[0].b), keepWhole)]
		return []piece{{off: 0, n: int64(len(b)), b: b}}
	}
	defer func() {
		if recover() != nil {
			pieces = whole()
		}
	}()
	f, err := elf.NewFile(io.NewSectionReader(held, 0, size))
	if err != nil {
		return whole()
	}
	// The file and program headers sit in the first page.
	add(0, elfHead)
	for _, p := range f.Progs {
		if p.Type == elf.PT_DYNAMIC || p.Type == elf.PT_INTERP || p.Type == elf.PT_NOTE {
			add(p.Off, p.Filesz)
		}
	}
	if b, ok := held.slice(0, 64); ok {
		shoff, shsize := sectionHeaderTable(b, f)
		add(shoff, shsize)
	}
	names := shstrndx(held[0].b, f)
	for i, s := range f.Sections {
		if s.Type != elf.SHT_NOBITS && wantedSection(s.Type, s.Flags, i == names) {
			add(s.Offset, s.Size)
		}
	}
	return merge(pieces)
}

// shstrndx reads the index of the section names from the ELF header.
func shstrndx(b []byte, f *elf.File) int {
	if f.Class == elf.ELFCLASS64 && len(b) >= 64 {
		return int(f.ByteOrder.Uint16(b[0x3e:]))
	}
	if f.Class == elf.ELFCLASS32 && len(b) >= 52 {
		return int(f.ByteOrder.Uint16(b[0x32:]))
	}
	return -1
}

// sectionHeaderTable finds the section header table from the ELF header
// itself (debug/elf does not say where it read it).
func sectionHeaderTable(b []byte, f *elf.File) (off, size uint64) {
	if len(b) < 64 {
		return 0, 0
	}
	bo := f.ByteOrder
	if f.Class == elf.ELFCLASS64 {
		return bo.Uint64(b[0x28:]), uint64(bo.Uint16(b[0x3a:])) * uint64(bo.Uint16(b[0x3c:]))
	}
	return uint64(bo.Uint32(b[0x20:])), uint64(bo.Uint16(b[0x2e:])) * uint64(bo.Uint16(b[0x30:]))
}

// merge sorts pieces by offset and joins overlapping or touching ones.
func merge(ps []piece) []piece {
	if len(ps) < 2 {
		return ps
	}
	slices.SortFunc(ps, func(a, b piece) int { return cmp.Compare(a.off, b.off) })
	out := ps[:1]
	for _, p := range ps[1:] {
		last := &out[len(out)-1]
		end := last.off + int64(len(last.b))
		if p.off > end {
			out = append(out, p)
			continue
		}
		if pend := p.off + int64(len(p.b)); pend > end {
			// A copy: last.b shares memory with what was held.
			last.b = append(last.b[:len(last.b):len(last.b)], p.b[end-p.off:]...)
			last.n = int64(len(last.b))
		}
	}
	return out
}
