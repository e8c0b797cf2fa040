package check

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/imagegate/imagegate/internal/snapshot"
)

// checkMetadata compares the image config with metadataTest, one result per
// property, as container-structure-test does.
func checkMetadata(img *snapshot.Image, m *MetadataTest) []Result {
	if img == nil {
		r := specResult("spec/metadataTest", "metadata", "")
		r.fail("no image config: metadata tests need an OCI, docker-archive or registry image (TARGET has no config)")
		return []Result{r}
	}
	var out []Result
	env := map[string]string{}
	for _, kv := range img.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for i, e := range m.EnvVars {
		out = append(out, keyValue("spec/metadataTest/envVars/"+e.Key, "env "+e.Key, e, m.envRe[i], env))
	}
	for i, e := range m.Labels {
		out = append(out, keyValue("spec/metadataTest/labels/"+e.Key, "label "+e.Key, e, m.labelRe[i], img.Labels))
	}
	for _, e := range m.UnboundEnvVars {
		r := specResult("spec/metadataTest/unboundEnvVars/"+e.Key, "metadata", "")
		if v, ok := env[e.Key]; ok {
			r.fail("env %s is set (%q), expected unset", e.Key, v)
		} else {
			r.Message = "env " + e.Key + " not set"
		}
		out = append(out, r)
	}
	// container-structure-test compares port numbers only ("8080" is
	// exposed by 8080/tcp and 8080/udp alike); "8080/udp" is exact.
	ports := map[string]bool{}
	for _, p := range img.ExposedPorts {
		ports[p] = true
		num, _, _ := strings.Cut(p, "/")
		ports[num] = true
		if !strings.Contains(p, "/") {
			ports[p+"/tcp"] = true
		}
	}
	out = presence(out, "spec/metadataTest/exposedPorts/", "port", "exposed", m.ExposedPorts, true, ports, img.ExposedPorts)
	out = presence(out, "spec/metadataTest/unexposedPorts/", "port", "exposed", m.UnexposedPorts, false, ports, img.ExposedPorts)
	vols := map[string]bool{}
	for _, v := range img.Volumes {
		vols[v] = true
	}
	out = presence(out, "spec/metadataTest/volumes/", "volume", "declared", m.Volumes, true, vols, img.Volumes)
	out = presence(out, "spec/metadataTest/unmountedVolumes/", "volume", "declared", m.UnmountedVolumes, false, vols, img.Volumes)
	if m.Entrypoint != nil {
		out = append(out, list("spec/metadataTest/entrypoint", "entrypoint", *m.Entrypoint, img.Entrypoint))
	}
	if m.Cmd != nil {
		out = append(out, list("spec/metadataTest/cmd", "cmd", *m.Cmd, img.Cmd))
	}
	if m.Workdir != nil {
		out = append(out, str("spec/metadataTest/workdir", "workdir", *m.Workdir, img.WorkingDir))
	}
	if m.User != nil {
		out = append(out, str("spec/metadataTest/user", "user", *m.User, img.User))
	}
	return out
}

func keyValue(id, name string, want KeyValue, re *regexp.Regexp, have map[string]string) Result {
	r := specResult(id, "metadata", "")
	v, ok := have[want.Key]
	switch {
	case !ok:
		r.fail("%s is not set", name)
	case re != nil && !re.MatchString(v):
		r.fail("%s is %q, expected to match %q", name, v, want.Value)
	case re == nil && v != want.Value:
		r.fail("%s is %q, expected %q", name, v, want.Value)
	default:
		r.Message = fmt.Sprintf("%s=%s", want.Key, v)
	}
	return r
}

func list(id, name string, want, have []string) Result {
	r := specResult(id, "metadata", "")
	if slices.Equal(want, have) {
		r.Message = name + " " + quoteList(have)
	} else {
		r.fail("%s is %s, expected %s", name, quoteList(have), quoteList(want))
	}
	return r
}

func str(id, name, want, have string) Result {
	r := specResult(id, "metadata", "")
	if want == have {
		r.Message = fmt.Sprintf("%s %q", name, have)
	} else {
		r.fail("%s is %q, expected %q", name, have, want)
	}
	return r
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// presence gives a result per item of want: it passes when the image has
// the item (with wanted false, when it has not). noun and state word the
// verdict ("port 8080 exposed"); all is what the image has, listed when a
// wanted item is missing.
func presence(out []Result, id, noun, state string, want []string, wanted bool, has map[string]bool, all []string) []Result {
	for _, x := range want {
		r := specResult(id+x, "metadata", "")
		switch {
		case has[x] && wanted:
			r.Message = noun + " " + x + " " + state
		case !has[x] && !wanted:
			r.Message = noun + " " + x + " not " + state
		case wanted:
			r.fail("%s %s is not %s; %s: %s", noun, x, state, state, listOrNone(all))
		default:
			r.fail("%s %s is %s, expected not", noun, x, state)
		}
		out = append(out, r)
	}
	return out
}
