# Multi-stage build: compile in the Rust image, run in a small Debian image as a
# non-root user. The image also holds the fake AI services (for the compose demo).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY examples ./examples
COPY tests ./tests
# Two builds: the example needs the dev-dependencies, whose tokio has the test clock;
# built on its own, the service binary does not carry it.
RUN cargo build --release --locked --bin watchpost \
 && cargo build --release --locked --example fake_ai

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/watchpost --create-home watchpost \
 && mkdir -p /var/lib/watchpost/spool /var/lib/watchpost/notify \
 && chown -R watchpost /var/lib/watchpost
# (A named volume takes its first contents and owner from the image's directory: made
# here, the spool and outbox volumes are the service user's, not root's.)
COPY --from=build /src/target/release/watchpost /usr/local/bin/watchpost
COPY --from=build /src/target/release/examples/fake_ai /usr/local/bin/watchpost-fake-ai
COPY config/watchpost.example.toml /etc/watchpost/watchpost.example.toml
USER watchpost
WORKDIR /var/lib/watchpost
# Bound to every address of the container. watchpost then answers a Host that is an
# IP address, localhost, the container's host name, or a name listed in
# WATCHPOST_SERVER__ALLOWED_HOSTS (the DNS rebinding defence): to browse to it as
# http://nas.lan:8000, run with -e WATCHPOST_SERVER__ALLOWED_HOSTS=nas.lan. Set
# WATCHPOST_API_KEYS too: writes from other machines need a key.
ENV WATCHPOST_SERVER__BIND=0.0.0.0:8000 \
    WATCHPOST_FILE_WATCHER__CAMERA_ROOT=/data/cameras \
    WATCHPOST_QUEUE__SPOOL_DIR=/var/lib/watchpost/spool \
    WATCHPOST_NOTIFY__OUTBOX_DIR=/var/lib/watchpost/notify
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8000/health || exit 1
ENTRYPOINT ["/usr/local/bin/watchpost"]
