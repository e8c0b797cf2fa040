package ospkg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Berkeley DB hash-file layout, as rpm's Packages file (RHEL <= 8) uses it
// (db/dbinc/db_page.h). Only what reading every record needs.
const (
	bdbHashMagic     = 0x061561
	bdbPageHeader    = 26
	bdbPageHashUns   = 2  // P_HASH_UNSORTED (old databases)
	bdbPageOverflow  = 7  // P_OVERFLOW
	bdbPageHashMeta  = 8  // P_HASHMETA
	bdbPageHash      = 13 // P_HASH
	bdbItemKeyData   = 1  // H_KEYDATA: stored in the page
	bdbItemOffPage   = 3  // H_OFFPAGE: stored on a chain of overflow pages
	bdbOffPageLength = 12
)

var errBDB = errors.New("malformed Berkeley DB file")

// bdbValues returns the data of every key/data pair in a Berkeley DB hash
// database, in page order. The file may come from a hostile image, so
// every offset is checked and overflow chains are bounded by the file's
// page count: a damaged file gives an error, never a panic or a loop.
// The record rpm keeps under key 0 (its next instance number) is skipped.
func bdbValues(r io.ReaderAt, size int64) ([][]byte, error) {
	meta := make([]byte, 512)
	if _, err := r.ReadAt(meta, 0); err != nil {
		return nil, fmt.Errorf("%w: read metadata: %v", errBDB, err)
	}
	var bo binary.ByteOrder = binary.LittleEndian
	switch {
	case binary.LittleEndian.Uint32(meta[12:]) == bdbHashMagic:
	case binary.BigEndian.Uint32(meta[12:]) == bdbHashMagic:
		bo = binary.BigEndian
	default:
		return nil, fmt.Errorf("%w: not a hash database", errBDB)
	}
	if meta[25] != bdbPageHashMeta {
		return nil, fmt.Errorf("%w: page 0 is type %d, not hash metadata", errBDB, meta[25])
	}
	pageSize := bo.Uint32(meta[20:])
	if pageSize < 512 || pageSize > 65536 || pageSize&(pageSize-1) != 0 {
		return nil, fmt.Errorf("%w: page size %d", errBDB, pageSize)
	}
	lastPage := bo.Uint32(meta[32:])
	if int64(lastPage) >= size/int64(pageSize) {
		// A file shorter than it claims: read the pages it has.
		lastPage = uint32(size/int64(pageSize)) - 1
	}

	page := make([]byte, pageSize)
	var values [][]byte
	for pgno := uint32(1); pgno <= lastPage; pgno++ {
		if _, err := r.ReadAt(page, int64(pgno)*int64(pageSize)); err != nil {
			return nil, fmt.Errorf("%w: read page %d: %v", errBDB, pgno, err)
		}
		if t := page[25]; t != bdbPageHash && t != bdbPageHashUns {
			continue
		}
		n := int(bo.Uint16(page[20:]))
		if bdbPageHeader+2*n > len(page) {
			return nil, fmt.Errorf("%w: page %d claims %d items", errBDB, pgno, n)
		}
		item := func(i int) ([]byte, error) {
			start := int(bo.Uint16(page[bdbPageHeader+2*i:]))
			end := len(page)
			if i > 0 {
				end = int(bo.Uint16(page[bdbPageHeader+2*(i-1):]))
			}
			if start < bdbPageHeader+2*n || start >= end || end > len(page) {
				return nil, fmt.Errorf("%w: page %d item %d at %d..%d", errBDB, pgno, i, start, end)
			}
			return page[start:end], nil
		}
		// Items alternate key, data.
		for i := 0; i+1 < n; i += 2 {
			key, err := item(i)
			if err != nil {
				return nil, err
			}
			data, err := item(i + 1)
			if err != nil {
				return nil, err
			}
			switch data[0] {
			case bdbItemKeyData:
				if key[0] == bdbItemKeyData && len(key) == 5 && bo.Uint32(key[1:]) == 0 {
					continue
				}
				values = append(values, append([]byte(nil), data[1:]...))
			case bdbItemOffPage:
				if len(data) < bdbOffPageLength {
					return nil, fmt.Errorf("%w: page %d item %d: short overflow reference", errBDB, pgno, i+1)
				}
				v, err := bdbOverflow(r, bo, pageSize, lastPage, bo.Uint32(data[4:]), bo.Uint32(data[8:]))
				if err != nil {
					return nil, err
				}
				values = append(values, v)
			}
		}
	}
	return values, nil
}

// bdbOverflow follows a chain of overflow pages holding one value of
// total bytes.
func bdbOverflow(r io.ReaderAt, bo binary.ByteOrder, pageSize, lastPage, pgno, total uint32) ([]byte, error) {
	if total > rpmMaxData || uint64(total) > uint64(lastPage+1)*uint64(pageSize) {
		return nil, fmt.Errorf("%w: overflow value of %d bytes", errBDB, total)
	}
	v := make([]byte, 0, total)
	page := make([]byte, pageSize)
	for hops := uint32(0); uint32(len(v)) < total; hops++ {
		if pgno == 0 || pgno > lastPage || hops > lastPage {
			return nil, fmt.Errorf("%w: overflow chain breaks at page %d", errBDB, pgno)
		}
		if _, err := r.ReadAt(page, int64(pgno)*int64(pageSize)); err != nil {
			return nil, fmt.Errorf("%w: read page %d: %v", errBDB, pgno, err)
		}
		if page[25] != bdbPageOverflow {
			return nil, fmt.Errorf("%w: page %d is type %d, not overflow", errBDB, pgno, page[25])
		}
		// On overflow pages the free-area field holds the data length.
		n := uint32(bo.Uint16(page[22:]))
		if n > pageSize-bdbPageHeader || n > total-uint32(len(v)) {
			return nil, fmt.Errorf("%w: overflow page %d holds %d bytes", errBDB, pgno, n)
		}
		v = append(v, page[bdbPageHeader:bdbPageHeader+n]...)
		pgno = bo.Uint32(page[16:])
	}
	return v, nil
}
