# roomcast: multi-stage build, small non-root runtime image.
#   docker build -t roomcast .
#   docker run -p 3000:3000 -e ROOMCAST_JWT_SECRET=... -e ROOMCAST_PUBLISH_KEY=... roomcast

FROM rust:1-bookworm AS build
# Node builds the web console (build.rs runs npm + esbuild).
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs rustfmt.toml ./
COPY src src
COPY web web
COPY load load
RUN cargo build --release --locked --bin roomcast \
 && strip target/release/roomcast

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin roomcast
COPY --from=build /src/target/release/roomcast /usr/local/bin/roomcast
USER 10001
# Configuration is by environment: every flag is ROOMCAST_<FLAG> (see README).
ENV ROOMCAST_LISTEN=0.0.0.0:3000 \
    ROOMCAST_LOG_FORMAT=json
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS http://127.0.0.1:3000/healthz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["roomcast"]
