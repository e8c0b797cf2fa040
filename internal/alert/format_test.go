package alert_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imagegate/imagegate/internal/alert"
	"github.com/imagegate/imagegate/internal/rollout"
	"github.com/imagegate/imagegate/internal/testenv"
)

// TestDeliveryFormats delivers the same alert to a real receiver in each
// format and checks the body it got, whole.
func TestDeliveryFormats(t *testing.T) {
	tests := []struct {
		format string
		want   string
	}{
		{alert.FormatJSON, `{
			"schemaVersion": 1,
			"id": "rollout/r-7/rev/4",
			"kind": "rollback",
			"label": "ubuntu-22.04",
			"version": "20260301.2",
			"fromVersion": "20260215.1",
			"rolloutId": "r-7",
			"ring": 0,
			"ringName": "canary",
			"signature": {"id": "s-3f2a9c", "template": "ModuleNotFoundError: No module named '_sqlite3' <*>"},
			"probableCause": [
				{"identity": "runtime/python@3.7/module/sqlite3", "why": "_sqlite3 is part of it (removed)"},
				{"identity": "package/deb/libsqlite3-0", "why": "sqlite3 ~ libsqlite3-0"}
			],
			"summary": "Rolled back: 9 pipelines in 4 orgs fail with this signature on 20260301.2, none on 20260215.1 (BF 2400 ≥ 1000).",
			"link": "https://imagegate.example.com/api/v1/rollouts/r-7/analysis",
			"time": "2026-03-01T12:00:00Z"
		}`},
		{alert.FormatSlack, `{
			"text": "Rolled back ubuntu-22.04 20260301.2 in ring 0 (canary): ModuleNotFoundError: No module named '_sqlite3' &lt;*&gt;",
			"blocks": [
				{"type": "header", "text": {"type": "plain_text", "text": "Rolled back ubuntu-22.04 20260301.2 in ring 0 (canary)"}},
				{"type": "section", "text": {"type": "mrkdwn", "text": "Rolled back: 9 pipelines in 4 orgs fail with this signature on 20260301.2, none on 20260215.1 (BF 2400 ≥ 1000)."}},
				{"type": "section", "fields": [
					{"type": "mrkdwn", "text": "*Label*\nubuntu-22.04"},
					{"type": "mrkdwn", "text": "*Version*\n20260301.2 (replacing 20260215.1)"},
					{"type": "mrkdwn", "text": "*Ring*\n0 (canary)"},
					{"type": "mrkdwn", "text": "*Decision*\nrollback"}
				]},
				{"type": "section", "text": {"type": "mrkdwn", "text": "*Signature* ` + "`s-3f2a9c`\\n```ModuleNotFoundError: No module named '_sqlite3' &lt;*&gt;```" + `"}},
				{"type": "section", "text": {"type": "mrkdwn", "text": "*Probable cause*\n• ` + "`runtime/python@3.7/module/sqlite3`" + ` — _sqlite3 is part of it (removed)\n• ` + "`package/deb/libsqlite3-0`" + ` — sqlite3 ~ libsqlite3-0"}},
				{"type": "actions", "elements": [
					{"type": "button", "text": {"type": "plain_text", "text": "Open the analysis"}, "url": "https://imagegate.example.com/api/v1/rollouts/r-7/analysis"}
				]}
			]
		}`},
		{alert.FormatTeams, `{
			"type": "message",
			"attachments": [{
				"contentType": "application/vnd.microsoft.card.adaptive",
				"contentUrl": null,
				"content": {
					"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
					"type": "AdaptiveCard",
					"version": "1.4",
					"msteams": {"width": "Full"},
					"body": [
						{"type": "TextBlock", "text": "Rolled back ubuntu-22.04 20260301.2 in ring 0 (canary)", "weight": "Bolder", "size": "Medium", "wrap": true},
						{"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": "Rolled back: 9 pipelines in 4 orgs fail with this signature on 20260301.2, none on 20260215.1 (BF 2400 ≥ 1000)."}]},
						{"type": "FactSet", "facts": [
							{"title": "Label", "value": "ubuntu-22.04"},
							{"title": "Version", "value": "20260301.2 (replacing 20260215.1)"},
							{"title": "Ring", "value": "0 (canary)"},
							{"title": "Decision", "value": "rollback"}
						]},
						{"type": "TextBlock", "text": "Signature s-3f2a9c", "weight": "Bolder", "wrap": true},
						{"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": "ModuleNotFoundError: No module named '_sqlite3' <*>", "fontType": "Monospace"}]},
						{"type": "TextBlock", "text": "Probable cause", "weight": "Bolder", "wrap": true},
						{"type": "RichTextBlock", "inlines": [
							{"type": "TextRun", "text": "runtime/python@3.7/module/sqlite3", "fontType": "Monospace", "weight": "Bolder"},
							{"type": "TextRun", "text": " — _sqlite3 is part of it (removed)"}
						]},
						{"type": "RichTextBlock", "inlines": [
							{"type": "TextRun", "text": "package/deb/libsqlite3-0", "fontType": "Monospace", "weight": "Bolder"},
							{"type": "TextRun", "text": " — sqlite3 ~ libsqlite3-0"}
						]}
					],
					"actions": [{"type": "Action.OpenUrl", "title": "Open the analysis", "url": "https://imagegate.example.com/api/v1/rollouts/r-7/analysis"}]
				}
			}]
		}`},
	}
	for _, tc := range tests {
		t.Run(tc.format, func(t *testing.T) {
			rcv := newReceiver(t, nil)
			st := tempSQLite(t)
			clock := testenv.NewClock(t0)
			target := alert.Target{URL: rcv.URL + "/hooks/T000/B000/XXXX?secret=1", Format: tc.format}
			a := sqliteAlert("rollout/r-7/rev/4")
			if err := mustOutbox(t, st, []alert.Target{target}, clock).Alert(t.Context(), a); err != nil {
				t.Fatal(err)
			}
			s := mustSender(t, st, alert.SenderOptions{Holder: "replica-a", BaseURL: "https://imagegate.example.com/", Clock: clock})
			if n, err := s.Deliver(t.Context()); err != nil || n != 1 {
				t.Fatalf("Deliver = %d, %v; want 1 item sent", n, err)
			}
			got := rcv.received()
			if len(got) != 1 {
				t.Fatalf("receiver got %d alerts, want 1", len(got))
			}
			if got[0].Path != "/hooks/T000/B000/XXXX" || got[0].ContentType != "application/json" || got[0].Key != alert.Key(a.ID, target) {
				t.Errorf("request: path %q, content type %q, key %q; want the target's path, application/json, %q",
					got[0].Path, got[0].ContentType, got[0].Key, alert.Key(a.ID, target))
			}
			var gotBody, wantBody any
			if err := json.Unmarshal(got[0].Body, &gotBody); err != nil {
				t.Fatalf("body is not JSON: %v\n%s", err, got[0].Body)
			}
			if err := json.Unmarshal([]byte(tc.want), &wantBody); err != nil {
				t.Fatalf("test's expected body: %v", err)
			}
			if diff := cmp.Diff(wantBody, gotBody); diff != "" {
				t.Errorf("%s body (-want +got):\n%s", tc.format, diff)
			}
			items, _, err := st.ListOutbox(t.Context(), rollout.OutboxFilter{}, rollout.Page{})
			if err != nil {
				t.Fatal(err)
			}
			if len(items) != 1 || !items[0].DeliveredAt.Equal(t0) || items[0].Attempts != 1 {
				t.Errorf("outbox after delivery = %+v, want one item delivered at t0 on the first attempt", items)
			}
		})
	}
}

// TestRenderWithoutServerURL: with no BaseURL the link stays a path, and
// neither chat format offers a button that could not open.
func TestRenderWithoutServerURL(t *testing.T) {
	a := sqliteAlert("rollout/r-7/rev/4")
	a.ProbableCause = nil
	for _, tc := range []struct {
		format string
		path   []any // where the link must appear in the body
	}{
		{alert.FormatJSON, []any{"link"}},
		{alert.FormatSlack, []any{"blocks", 4, "elements", 0, "text", "text"}},
		{alert.FormatTeams, []any{"attachments", 0, "content", "body", 5, "inlines", 0, "text"}},
	} {
		b, err := alert.Render(tc.format, a, a.Link)
		if err != nil {
			t.Fatal(err)
		}
		var body any
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatal(err)
		}
		v := body
		for _, k := range tc.path {
			switch k := k.(type) {
			case string:
				m, _ := v.(map[string]any)
				v = m[k]
			case int:
				s, _ := v.([]any)
				if k >= len(s) {
					v = nil
					break
				}
				v = s[k]
			}
		}
		want := "/api/v1/rollouts/r-7/analysis"
		if tc.format == alert.FormatSlack {
			want = "Analysis: `" + want + "`"
		} else if tc.format == alert.FormatTeams {
			want = "Analysis: " + want
		}
		if v != want {
			t.Errorf("%s: at %v got %v, want %q\n%s", tc.format, tc.path, v, want, b)
		}
		if tc.format == alert.FormatJSON {
			if pc, ok := body.(map[string]any)["probableCause"].([]any); !ok || len(pc) != 0 {
				t.Errorf("json: probableCause = %v, want [] when there is none", body.(map[string]any)["probableCause"])
			}
		}
	}
	if _, err := alert.Render("xml", a, a.Link); err == nil {
		t.Error("Render of an unknown format succeeded")
	}
}
