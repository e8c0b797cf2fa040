package alert

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/imagegate/imagegate/internal/rollout"
)

// PayloadSchemaVersion is AlertPayload's schemaVersion. Fields are only
// ever added within a version; a removal or change of meaning bumps it.
const PayloadSchemaVersion = 1

// Payload is the json format's body: components/schemas/AlertPayload in
// internal/server/openapi.yaml. Keep the two in step.
type Payload struct {
	SchemaVersion int                    `json:"schemaVersion"`
	ID            string                 `json:"id"`
	Kind          string                 `json:"kind"`
	Label         string                 `json:"label"`
	Version       string                 `json:"version"`
	FromVersion   string                 `json:"fromVersion,omitempty"`
	RolloutID     string                 `json:"rolloutId,omitempty"`
	Ring          int                    `json:"ring"`
	RingName      string                 `json:"ringName,omitempty"`
	Signature     rollout.AlertSignature `json:"signature"`
	ProbableCause []rollout.AlertCause   `json:"probableCause"` // [] when none, never null
	Summary       string                 `json:"summary"`
	Link          string                 `json:"link"`
	Time          time.Time              `json:"time"`
	Details       json.RawMessage        `json:"details,omitempty"`
}

// Render returns the request body of a in format, with link (the
// analysis, made absolute by the sender when it knows the server's URL).
func Render(format string, a rollout.Alert, link string) ([]byte, error) {
	var body any
	switch format {
	case FormatJSON, "":
		body = payload(a, link)
	case FormatSlack:
		body = slack(a, link)
	case FormatTeams:
		body = teams(a, link)
	default:
		return nil, fmt.Errorf("render alert %s: %w: format %q is none of json, slack, teams", a.ID, rollout.ErrInvalid, format)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("render alert %s as %s: %w", a.ID, format, err)
	}
	return b, nil
}

func payload(a rollout.Alert, link string) Payload {
	causes := a.ProbableCause
	if causes == nil {
		causes = []rollout.AlertCause{}
	}
	return Payload{
		SchemaVersion: PayloadSchemaVersion, ID: a.ID, Kind: a.Kind, Label: a.Label, Version: a.Version,
		FromVersion: a.FromVersion, RolloutID: a.RolloutID, Ring: a.Ring, RingName: a.RingName,
		Signature: a.Signature, ProbableCause: causes, Summary: a.Summary, Link: link,
		Time: a.CreatedAt.UTC(), Details: a.Details,
	}
}

// Title is the alert's one-line headline, e.g. "Rolled back ubuntu-22.04
// 20260301.1 in ring 0 (canary)".
func Title(a rollout.Alert) string {
	where := fmt.Sprintf("in ring %d", a.Ring)
	if a.RingName != "" {
		where += " (" + a.RingName + ")"
	}
	switch a.Kind {
	case rollout.AlertHalt:
		return fmt.Sprintf("Halted %s %s %s", a.Label, a.Version, where)
	case rollout.AlertRollback:
		return fmt.Sprintf("Rolled back %s %s %s", a.Label, a.Version, where)
	case rollout.AlertEscalation:
		return fmt.Sprintf("Escalation: users report %s %s failing", a.Label, a.Version)
	case rollout.AlertDryRun:
		return fmt.Sprintf("Dry run: would stop %s %s %s", a.Label, a.Version, where)
	case rollout.AlertDrift:
		return fmt.Sprintf("Drift: live %s %s is no longer the image that was pushed", a.Label, a.Version)
	case rollout.AlertNotice:
		return fmt.Sprintf("Coming to your builds: %s %s", a.Label, a.Version)
	case rollout.AlertUnreachable:
		return fmt.Sprintf("Unreachable: live %s %s cannot be pulled", a.Label, a.Version)
	}
	return fmt.Sprintf("%s %s %s %s", a.Kind, a.Label, a.Version, where)
}

// versionText is "v2 (replacing v1)".
func versionText(a rollout.Alert) string {
	if a.FromVersion == "" {
		return a.Version
	}
	return a.Version + " (replacing " + a.FromVersion + ")"
}

func ringText(a rollout.Alert) string {
	if a.RingName == "" {
		return fmt.Sprint(a.Ring)
	}
	return fmt.Sprintf("%d (%s)", a.Ring, a.RingName)
}

func absolute(link string) bool {
	return strings.HasPrefix(link, "https://") || strings.HasPrefix(link, "http://")
}

// truncate cuts s to at most n runes, marking the cut: Slack refuses a
// whole message whose block text is over its limit.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// Slack limits (Block Kit reference): header text 150 characters,
// section text 3000, a field 2000.
const (
	slackHeaderMax  = 150
	slackSectionMax = 3000
)

// slackEscape escapes the three characters Slack's mrkdwn gives meaning
// to even inside code: templates are full of "<*>".
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

type slackText struct {
	Type string `json:"type"` // plain_text or mrkdwn
	Text string `json:"text"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackElem `json:"elements,omitempty"`
}

type slackElem struct {
	Type string     `json:"type"`
	Text *slackText `json:"text,omitempty"`
	URL  string     `json:"url,omitempty"`
}

type slackMessage struct {
	// Text is the notification and the fallback where blocks do not show.
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

func slack(a rollout.Alert, link string) slackMessage {
	title := Title(a)
	md := func(s string) *slackText { return &slackText{Type: "mrkdwn", Text: truncate(s, slackSectionMax)} }
	blocks := []slackBlock{
		{Type: "header", Text: &slackText{Type: "plain_text", Text: truncate(title, slackHeaderMax)}},
	}
	if a.Summary != "" {
		blocks = append(blocks, slackBlock{Type: "section", Text: md(slackEscape(a.Summary))})
	}
	blocks = append(blocks, slackBlock{Type: "section", Fields: []slackText{
		{Type: "mrkdwn", Text: "*Label*\n" + slackEscape(a.Label)},
		{Type: "mrkdwn", Text: "*Version*\n" + slackEscape(versionText(a))},
		{Type: "mrkdwn", Text: "*Ring*\n" + slackEscape(ringText(a))},
		{Type: "mrkdwn", Text: "*Decision*\n" + slackEscape(a.Kind)},
	}})
	if a.Signature.Template != "" {
		blocks = append(blocks, slackBlock{Type: "section", Text: md(
			fmt.Sprintf("*Signature* `%s`\n```%s```", slackEscape(a.Signature.ID), slackEscape(a.Signature.Template)))})
	}
	if len(a.ProbableCause) > 0 {
		var b strings.Builder
		b.WriteString("*Probable cause*")
		for _, c := range a.ProbableCause {
			fmt.Fprintf(&b, "\n• `%s` — %s", slackEscape(c.Identity), slackEscape(c.Why))
		}
		blocks = append(blocks, slackBlock{Type: "section", Text: md(b.String())})
	}
	if absolute(link) {
		blocks = append(blocks, slackBlock{Type: "actions", Elements: []slackElem{
			{Type: "button", Text: &slackText{Type: "plain_text", Text: "Open the analysis"}, URL: link},
		}})
	} else {
		blocks = append(blocks, slackBlock{Type: "context", Elements: []slackElem{
			{Type: "mrkdwn", Text: &slackText{Type: "mrkdwn", Text: "Analysis: `" + slackEscape(link) + "`"}},
		}})
	}
	text := title
	if a.Signature.Template != "" {
		text += ": " + a.Signature.Template
	}
	return slackMessage{Text: slackEscape(truncate(text, slackSectionMax)), Blocks: blocks}
}

// The Teams body is a message with one Adaptive Card attachment: what
// Teams' Workflows webhooks ("post to a channel when a webhook request is
// received") require, and what the older Office 365 connector webhooks
// accept too. Version 1.4 is the newest every Teams client renders.
type teamsMessage struct {
	Type        string            `json:"type"` // "message"
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string    `json:"contentType"`
	ContentURL  *string   `json:"contentUrl"` // null, as the Workflows sample has it
	Content     teamsCard `json:"content"`
}

type teamsCard struct {
	Schema  string         `json:"$schema"`
	Type    string         `json:"type"`
	Version string         `json:"version"`
	Body    []any          `json:"body"`
	Actions []teamsAction  `json:"actions,omitempty"`
	MSTeams map[string]any `json:"msteams,omitempty"`
}

type teamsTextBlock struct {
	Type     string `json:"type"` // TextBlock
	Text     string `json:"text"`
	Weight   string `json:"weight,omitempty"`
	Size     string `json:"size,omitempty"`
	FontType string `json:"fontType,omitempty"`
	Wrap     bool   `json:"wrap"`
}

// teamsRich is a RichTextBlock: its TextRuns are not read as markdown,
// so a template's "_sqlite3" or "<*>" shows as written.
type teamsRich struct {
	Type    string     `json:"type"` // RichTextBlock
	Inlines []teamsRun `json:"inlines"`
}

type teamsRun struct {
	Type     string `json:"type"` // TextRun
	Text     string `json:"text"`
	FontType string `json:"fontType,omitempty"`
	Weight   string `json:"weight,omitempty"`
}

type teamsFactSet struct {
	Type  string      `json:"type"` // FactSet
	Facts []teamsFact `json:"facts"`
}

type teamsFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

type teamsAction struct {
	Type  string `json:"type"` // Action.OpenUrl
	Title string `json:"title"`
	URL   string `json:"url"`
}

func teams(a rollout.Alert, link string) teamsMessage {
	plain := func(s string) teamsRich {
		return teamsRich{Type: "RichTextBlock", Inlines: []teamsRun{{Type: "TextRun", Text: s}}}
	}
	heading := func(s string) teamsTextBlock {
		return teamsTextBlock{Type: "TextBlock", Text: s, Weight: "Bolder", Wrap: true}
	}
	body := []any{
		teamsTextBlock{Type: "TextBlock", Text: Title(a), Weight: "Bolder", Size: "Medium", Wrap: true},
	}
	if a.Summary != "" {
		body = append(body, plain(a.Summary))
	}
	body = append(body, teamsFactSet{Type: "FactSet", Facts: []teamsFact{
		{Title: "Label", Value: a.Label},
		{Title: "Version", Value: versionText(a)},
		{Title: "Ring", Value: ringText(a)},
		{Title: "Decision", Value: a.Kind},
	}})
	if a.Signature.Template != "" {
		body = append(body, heading("Signature "+a.Signature.ID),
			teamsRich{Type: "RichTextBlock", Inlines: []teamsRun{{Type: "TextRun", Text: a.Signature.Template, FontType: "Monospace"}}})
	}
	if len(a.ProbableCause) > 0 {
		body = append(body, heading("Probable cause"))
		for _, c := range a.ProbableCause {
			body = append(body, teamsRich{Type: "RichTextBlock", Inlines: []teamsRun{
				{Type: "TextRun", Text: c.Identity, FontType: "Monospace", Weight: "Bolder"},
				{Type: "TextRun", Text: " — " + c.Why},
			}})
		}
	}
	card := teamsCard{
		Schema: "http://adaptivecards.io/schemas/adaptive-card.json", Type: "AdaptiveCard", Version: "1.4",
		Body: body, MSTeams: map[string]any{"width": "Full"},
	}
	if absolute(link) {
		card.Actions = []teamsAction{{Type: "Action.OpenUrl", Title: "Open the analysis", URL: link}}
	} else {
		card.Body = append(card.Body, plain("Analysis: "+link))
	}
	return teamsMessage{Type: "message", Attachments: []teamsAttachment{
		{ContentType: "application/vnd.microsoft.card.adaptive", Content: card},
	}}
}
