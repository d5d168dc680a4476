#!/usr/bin/env bash
# Lays out the runtime image's whole filesystem in OUT_DIR: the binary, the C libraries it links
# (and the dynamic loader), the CA bundle the cloud APIs and TLS probes verify against, a passwd
# and group naming the unprivileged user it runs as, and the default configuration. Nothing else:
# no shell, no package manager. The Dockerfile's build stage runs it on its own build; the suite
# runs it on the binary it built and hands OUT_DIR to the runtime stage as the `build` context.
# Usage: deploy/docker/rootfs.sh BINARY OUT_DIR   (writes OUT_DIR/rootfs, which must not exist)
set -euo pipefail
binary=$1
out=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
rootfs="${out%/}/rootfs"
if [ -e "$rootfs" ]; then
  echo "rootfs.sh: $rootfs exists; give an empty OUT_DIR" >&2
  exit 1
fi
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs" "$rootfs/etc/lbtriage" "$rootfs/tmp"
install -m 0755 "$binary" "$rootfs/usr/local/bin/lbtriage"
# Every library the dynamic linker resolves, at the path it resolves it from, and the loader.
ldd "$binary" | awk '/=> \// {print $3} /^\t\// {print $1}' | sort -u | while read -r lib; do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/nonexistent\nlbtriage:x:10502:10502:lbtriage:/nonexistent:/nonexistent\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nlbtriage:x:10502:\n' > "$rootfs/etc/group"
install -m 0644 "$root/deploy/lbtriage.example.yml" "$rootfs/etc/lbtriage/lbtriage.yml"
chmod 1777 "$rootfs/tmp"
