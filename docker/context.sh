#!/usr/bin/env bash
# Assemble a build context for tools that expect the Dockerfile at the context's root:
# the committed tree (git archive, so nothing local leaks in) plus docker/Dockerfile.
#   docker/context.sh OUTDIR        then: buildah bud OUTDIR / docker build OUTDIR
set -euo pipefail
out=${1:?usage: docker/context.sh OUTDIR}
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
rm -rf "$out"
mkdir -p "$out"
git -C "$root" archive --format=tar HEAD | tar -x -C "$out"
cp "$root/docker/Dockerfile" "$out/Dockerfile"
