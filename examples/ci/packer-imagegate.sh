#!/bin/sh
# Packer shell provisioner (see runner.pkr.hcl): the last step of a VM image
# build. It inventories the machine being built, gates it against the image
# now live and registers the version with its evidence; the rollout starts
# from the post-processor once the image is published.
# Environment: IMAGEGATE_SERVER, IMAGEGATE_TOKEN, LABEL, VERSION.
set -eu
imagegate scan host --out /tmp/snapshot.json
# check exits 1 when the gate fails: push anyway so the server records the
# verdict (a failed gate cannot be rolled out without --force), then fail.
rc=0
imagegate check host --baseline /tmp/previous.json --changes /tmp/changes.yaml -o json --out /tmp/check.json || rc=$?
imagegate image push "$LABEL" "$VERSION" --snapshot /tmp/snapshot.json --check-report /tmp/check.json
exit "$rc"
