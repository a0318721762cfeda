# Sputnik server image: builds in release mode and serves the default model on port 8080.
#   docker build -t sputnik . && docker run -p 8080:8080 sputnik
FROM swift:6.0-bookworm AS build
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      libopenblas-dev libssl-dev zlib1g-dev pkg-config python3-pip unzip && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources Sources
COPY Tests/TestSupport Tests/TestSupport
RUN swift build -c release --static-swift-stdlib --product sputnik && cp .build/release/sputnik /usr/local/bin/sputnik
COPY scripts scripts
RUN PIP_BREAK_SYSTEM_PACKAGES=1 scripts/fetch-models.sh /models smollm2

FROM debian:bookworm-slim
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      libopenblas0-pthread libssl3 zlib1g libstdc++6 && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/sputnik /usr/local/bin/sputnik
COPY --from=build /models /models
COPY Config /etc/sputnik
EXPOSE 8080
ENTRYPOINT ["sputnik", "serve", "--config", "/etc/sputnik/sputnik.yaml", "--host", "0.0.0.0", "--model", "/models/SmolLM2-135M-Instruct.Q4_1.gguf"]
