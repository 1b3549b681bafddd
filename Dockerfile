# The `choreoscope` binary with the web viewer embedded.
#   docker build -t choreoscope .
#   docker compose up          # Kafka + PostgreSQL + collector (docker-compose.yml)

# 1. The web viewer (ui/) → ui/dist, embedded into the binary by the next stage.
FROM node:20-bookworm-slim AS ui
WORKDIR /src/ui
COPY ui/package.json ui/package-lock.json ./
RUN npm install --no-audit --no-fund
COPY ui/ ./
RUN npm run build

# 2. The binary. librdkafka is built from source by rdkafka-sys (cmake-free, needs a C toolchain).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
COPY --from=ui /src/ui/dist ui/dist
RUN cargo build --release --locked -p choreoscope && cp target/release/choreoscope /choreoscope

# 3. Runtime: the binary alone.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/choreoscope choreoscope \
    && mkdir -p /var/lib/choreoscope && chown choreoscope /var/lib/choreoscope
COPY --from=build /choreoscope /usr/local/bin/choreoscope
USER choreoscope
WORKDIR /var/lib/choreoscope
ENV CHOREOSCOPE_LISTEN=0.0.0.0:8080
# No login exists yet: a container listens on every address only because it is meant to sit
# behind the platform's authenticating proxy or network policy (docs/security.md).
ENV CHOREOSCOPE_ALLOW_UNAUTHENTICATED=true
EXPOSE 8080
ENTRYPOINT ["choreoscope"]
CMD ["collect"]
