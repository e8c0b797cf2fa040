package rollout

import (
	"context"
	"fmt"
	"time"

	"github.com/imagegate/imagegate/internal/signature"
)

// MaxSignatures bounds the clusters the server's miner holds: past it, an
// error text that fits none is signed by its own masked text, uncounted
// in memory, so a stream of garbage cannot exhaust it.
const MaxSignatures = 100_000

var (
	_ Signer             = (*signature.Signer)(nil)
	_ GeneralisingSigner = (*signature.Signer)(nil)
)

// NewStoredSigner returns the signature miner as a Signer, seeded with the
// templates of the signatures st saw within MaxEventAge before now, so a
// restarted server continues from the generalised templates.
func NewStoredSigner(ctx context.Context, st TelemetryStore, now time.Time) (*signature.Signer, error) {
	templates, err := st.SignatureTemplates(ctx, now.Add(-MaxEventAge))
	if err != nil {
		return nil, fmt.Errorf("seed the signature miner: %w", err)
	}
	return signature.NewSigner(signature.Options{MaxClusters: MaxSignatures}, templates), nil
}
