package diff

import (
	"context"

	"github.com/imagegate/imagegate/internal/snapshot"
)

// LoadPair reads the old and the new snapshot files at the same time: the
// two decodes are independent and dominate a large diff's wall time. The
// error starts with the path of the file that could not be read (the old
// one when both fail). Decoding is not interrupted
// by ctx; a cancelled ctx is reported once both reads have returned.
func LoadPair(ctx context.Context, oldPath, newPath string) (old, new *snapshot.Snapshot, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	var newErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		new, newErr = snapshot.ReadFile(newPath)
	}()
	old, err = snapshot.ReadFile(oldPath)
	<-done
	switch {
	case err != nil:
		return nil, nil, err
	case newErr != nil:
		return nil, nil, newErr
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	return old, new, nil
}
