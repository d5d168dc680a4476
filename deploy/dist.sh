#!/usr/bin/env bash
# Writes the release archive lbtriage-<version>.linux-<arch>.tar.gz and sha256sums.txt into OUT_DIR,
# as node_exporter and blackbox_exporter publish theirs: one folder holding the binary, README,
# LICENSE and an example configuration, plus what users deploy beside it (rule file, dashboards,
# runbooks, systemd unit, cloud policies).
# Usage: deploy/dist.sh BINARY OUT_DIR   (`make dist` passes the release build)
set -euo pipefail
binary=$1
out=$2
root=$(cd "$(dirname "$0")/.." && pwd)
version=$("$binary" --version | awk '{print $2}')
case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) arch=$(uname -m) ;;
esac
name="lbtriage-${version}.linux-${arch}"
staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
dir="$staging/$name"
mkdir -p "$dir"/{rules,dashboards,runbooks,systemd,iam}
install -m 0755 "$binary" "$dir/lbtriage"
install -m 0644 "$root/README.md" "$root/LICENSE" "$dir/"
install -m 0644 "$root/deploy/lbtriage.example.yml" "$dir/lbtriage.example.yml"
install -m 0644 "$root/alerts/lbtriage.rules.yml" "$dir/rules/"
install -m 0644 "$root"/grafana/dashboards/*.json "$dir/dashboards/"
install -m 0644 "$root"/alerts/runbooks/*.md "$dir/runbooks/"
install -m 0644 "$root/deploy/systemd/lbtriage.service" "$dir/systemd/"
install -m 0644 "$root"/deploy/iam/*.json "$dir/iam/"
mkdir -p "$out"
# Reproducible: sorted names, fixed owner and modification time.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2000-01-01 00:00Z' \
  -C "$staging" -czf "$out/$name.tar.gz" "$name"
(cd "$out" && sha256sum "$name.tar.gz" > sha256sums.txt)
echo "$out/$name.tar.gz"
