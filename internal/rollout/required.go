package rollout

import "fmt"

// The checks below are what every Store refuses with ErrInvalid before it
// touches its database, written once so that the stores agree on them and
// on their wording.

// CheckImage refuses an image without a label.
func CheckImage(img Image) error {
	if img.Label == "" {
		return fmt.Errorf("put image: %w: empty label", ErrInvalid)
	}
	return nil
}

// CheckVersion refuses a version without its label or version.
func CheckVersion(v Version) error {
	if v.Label == "" || v.Version == "" {
		return fmt.Errorf("create version %s %s: %w: label and version are required", v.Label, v.Version, ErrInvalid)
	}
	return nil
}

// CheckRollout refuses a rollout without its label or version.
func CheckRollout(r *Rollout) error {
	if r.Label == "" || r.Version == "" {
		return fmt.Errorf("create rollout: %w: label and version are required", ErrInvalid)
	}
	return nil
}

// CheckPin refuses a pin without its org, label or version.
func CheckPin(pin Pin) error {
	if pin.Org == "" || pin.Label == "" || pin.Version == "" {
		return fmt.Errorf("put pin: %w: org, label and version are required", ErrInvalid)
	}
	return nil
}

// CheckToken refuses a token without its ID or hash.
func CheckToken(t Token) error {
	if t.ID == "" || len(t.Hash) == 0 {
		return fmt.Errorf("create token %q: %w: id and hash are required", t.Name, ErrInvalid)
	}
	return nil
}

// CheckEvents refuses a batch in which an event has no job ID.
func CheckEvents(events []JobEvent) error {
	for i := range events {
		if events[i].JobID == "" {
			return fmt.Errorf("append events: %w: event %d has no jobId", ErrInvalid, i)
		}
	}
	return nil
}

// CheckLease refuses a lease request without its name or holder.
func CheckLease(name, holder string) error {
	if name == "" || holder == "" {
		return fmt.Errorf("acquire lease: %w: name and holder are required", ErrInvalid)
	}
	return nil
}
