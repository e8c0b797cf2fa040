package signature_test

import (
	"testing"

	"github.com/imagegate/imagegate/internal/signature"
)

func TestSignerSignsTheExtractedMessage(t *testing.T) {
	s := signature.NewSigner(signature.Options{}, nil)
	id, tmpl := s.Sign(sqliteTraceback)
	if tmpl != "ModuleNotFoundError: No module named '_sqlite3'" || id != signature.IDOf(tmpl) {
		t.Errorf("Sign(sqlite traceback) = %q, %q; want the module error and IDOf(template)", id, tmpl)
	}
	other, _ := s.Sign("Traceback (most recent call last):\nModuleNotFoundError: No module named 'requests'\n")
	if other == id {
		t.Errorf("'requests' and '_sqlite3' share signature %s", id)
	}
	if id, tmpl := s.Sign("\n  \n"); id != "" || tmpl != "" {
		t.Errorf("Sign(blank) = %q, %q; want no signature", id, tmpl)
	}
	if got, _, ok := s.Match("x\nModuleNotFoundError: No module named '_sqlite3'\n"); !ok || got != id {
		t.Errorf("Match = %q, %v; want %s", got, ok, id)
	}
	if _, _, ok := s.Match("fatal: something never seen before at all\n"); ok {
		t.Error("Match of an unseen message found a signature")
	}
}

// A restarted signer seeded with the stored templates, in any order,
// answers with the generalised id at once.
func TestSignerSeededContinuesGeneralised(t *testing.T) {
	first := signature.NewSigner(signature.Options{}, nil)
	a := "Error: service alpha refused the connection\n"
	b := "Error: service beta refused the connection\n"
	idA, tmplA := first.Sign(a)
	idB, tmplB := first.Sign(b)
	if idA == idB {
		t.Fatalf("the second variant did not generalise the template (%s)", tmplB)
	}
	for _, order := range [][]string{{tmplA, tmplB}, {tmplB, tmplA}} {
		s := signature.NewSigner(signature.Options{}, order)
		if id, tmpl := s.Sign(a); id != idB {
			t.Errorf("seeded with %q: Sign(a) = %s %q, want the generalised %s %q", order, id, tmpl, idB, tmplB)
		}
		if s.Len() != 1 {
			t.Errorf("seeded with %q: %d signatures, want 1", order, s.Len())
		}
	}
}

// SignGeneralised names the id a template had before the text that
// generalised it, once.
func TestSignerReportsGeneralisedID(t *testing.T) {
	s := signature.NewSigner(signature.Options{}, nil)
	a := "Error: service alpha refused the connection\n"
	b := "Error: service beta refused the connection\n"
	idA, _, prev := s.SignGeneralised(a)
	if prev != "" {
		t.Errorf("first message: previous %q, want none", prev)
	}
	idB, tmplB, prev := s.SignGeneralised(b)
	if idB == idA || prev != idA || tmplB != "Error: service <*> refused the connection" {
		t.Errorf("second message: %s %q previous %q; want the generalised template, previous %s", idB, tmplB, prev, idA)
	}
	if id, _, prev := s.SignGeneralised(a); id != idB || prev != "" {
		t.Errorf("first message again: %s previous %q; want %s and no previous", id, prev, idB)
	}
}
