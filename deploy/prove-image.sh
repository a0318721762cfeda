#!/usr/bin/env bash
# prove-image.sh — builds and runs the Dockerfile where no container registry is reachable (deploy/README.md,
# "Proving the image here"): base images made by mmdebstrap from the Debian mirror, the Swift toolchain of this
# machine (/opt/swift) and its package copies mounted into the build, podman instead of a Docker engine.
# Then: run the image with the model mounted, wait for HEALTHCHECK's /health, one chat completion, stop.
# Needs root, podman, buildah, runc and mmdebstrap (apt-get install podman buildah runc mmdebstrap uidmap).
# On this machine kind (a VM with hybrid cgroups that forbids raising RLIMIT_NOFILE/NPROC) podman's default crun
# refuses to start containers, so runc is the runtime and the rlimits are set explicitly.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/sputnik-image}
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
PORT=${PORT:-18080}
PODMAN=(podman --runtime runc)
LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
mkdir -p "$WORK"

# 1. Base images: a Debian 12 rootfs with what the Swift toolchain needs (standing in for swift:6.3.1-bookworm, whose
#    toolchain is mounted below) and a minimal one (standing in for debian:bookworm-slim).
if ! podman image exists localhost/bookworm-swift-base; then
  mmdebstrap --variant=minbase --include=ca-certificates,git,gcc,g++,libc6-dev,libstdc++-12-dev,libgcc-12-dev,binutils,libcurl4,libxml2,libedit2,libsqlite3-0,libncurses6,libz3-4,libpython3.11,tzdata,pkg-config \
    bookworm "$WORK/swift-base.tar" http://deb.debian.org/debian
  podman import "$WORK/swift-base.tar" localhost/bookworm-swift-base
fi
if ! podman image exists localhost/bookworm-slim; then
  mmdebstrap --variant=minbase bookworm "$WORK/slim.tar" http://deb.debian.org/debian
  podman import "$WORK/slim.tar" localhost/bookworm-slim
fi

# 2. The image, from the repository's Dockerfile unchanged; --format docker keeps the HEALTHCHECK.
"${PODMAN[@]}" build "${LIMITS[@]}" --format docker --network host \
  --volume /opt/swift:/opt/swift:ro --volume /opt/swift-packages:/opt/swift-packages:ro \
  --volume /etc/gitconfig:/etc/gitconfig:ro \
  --build-arg BUILD_IMAGE=localhost/bookworm-swift-base --build-arg RUNTIME_IMAGE=localhost/bookworm-slim \
  -t localhost/sputnik:test .
podman image inspect localhost/sputnik:test --format 'user={{.Config.User}} healthcheck={{.Config.Healthcheck.Test}}'
podman image ls localhost/sputnik:test

# 3. Run it with the model mounted read-only; flags come from SPUTNIK_* variables.
podman rm -f sputnik-test >/dev/null 2>&1 || true
"${PODMAN[@]}" run -d "${LIMITS[@]}" --name sputnik-test --network host \
  -v "$(realpath "$MODEL")":/models/model.gguf:ro \
  -e SPUTNIK_MODEL=/models/model.gguf -e SPUTNIK_PORT="$PORT" -e SPUTNIK_ALIAS=smollm2 -e SPUTNIK_THREADS=2 \
  -e SPUTNIK_LOG_FORMAT=json localhost/sputnik:test
trap 'podman rm -f sputnik-test >/dev/null 2>&1 || true' EXIT
for i in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 1
done
"${PODMAN[@]}" healthcheck run sputnik-test && echo "healthcheck: healthy"
"${PODMAN[@]}" exec sputnik-test id
curl -sS -i "http://127.0.0.1:$PORT/health"; echo
curl -sS "http://127.0.0.1:$PORT/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"messages":[{"role":"user","content":"What is the capital of France?"}],"max_tokens":24}'; echo
podman logs sputnik-test 2>&1 | tail -n 3

# 4. The init container's image: scripts/fetch-models.sh downloads the model into a volume, as uid 10001.
"${PODMAN[@]}" build "${LIMITS[@]}" --format docker --network host --target fetch \
  --build-arg RUNTIME_IMAGE=localhost/bookworm-slim -t localhost/sputnik-fetch:test .
rm -rf "$WORK/models" && mkdir -p "$WORK/models" && chown 10001:10001 "$WORK/models"
# This machine's network re-signs TLS with its own CA: the host's trust store is lent to the container, read-only.
"${PODMAN[@]}" run --rm "${LIMITS[@]}" --network host -v "$WORK/models":/models \
  -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro localhost/sputnik-fetch:test /models smollm2
ls -ln "$WORK/models"
