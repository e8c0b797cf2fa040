package rollout

import (
	"context"
)

// Audit lists audit entries, newest first.
func (s *Service) Audit(ctx context.Context, f AuditFilter, p Page) ([]AuditEntry, string, error) {
	es, next, err := s.st.ListAudit(ctx, f, normPage(p))
	return es, next, errWrap(err, "list audit log")
}
