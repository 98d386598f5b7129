# syntax=docker/dockerfile:1
# playsource: one image, one binary (`playsource`); the subcommand picks the layer
# (init, stream, batch, serve, gen, ...). Build: docker build -t playsource:local .

# ---------------------------------------------------------------------------- planner
# Extracts the workspace manifests and writes stub sources for every target they name,
# so the dependency layer below is only rebuilt when a Cargo.toml or Cargo.lock changes.
FROM rust:1-bookworm AS planner
WORKDIR /src
COPY . .
RUN set -eu; \
    mkdir -p /recipe; \
    find . -path ./target -prune -o \( -name Cargo.toml -o -name Cargo.lock -o -path ./rust-toolchain.toml -o -path ./.cargo/config.toml \) -print \
      | while read -r f; do mkdir -p "/recipe/$(dirname "$f")"; cp "$f" "/recipe/$f"; done; \
    cd /recipe; \
    find . -name Cargo.toml ! -path ./Cargo.toml | while read -r manifest; do \
      dir="$(dirname "$manifest")"; \
      mkdir -p "$dir/src"; \
      echo '' > "$dir/src/lib.rs"; \
      [ -f "/src/$dir/src/main.rs" ] && echo 'fn main() {}' > "$dir/src/main.rs"; \
      [ -f "/src/$dir/build.rs" ] && echo 'fn main() {}' > "$dir/build.rs"; \
      awk -v dir="$dir" ' \
        function flush() { if (kind != "") { if (path == "") path = defdir[kind] "/" name ".rs"; print dir "/" path } kind = ""; name = ""; path = "" } \
        BEGIN { defdir["bin"] = "src/bin"; defdir["test"] = "tests"; defdir["bench"] = "benches"; defdir["example"] = "examples" } \
        /^\[\[(bin|test|bench|example)\]\]/ { flush(); kind = $0; gsub(/[\[\] ]/, "", kind); next } \
        /^\[/ { flush(); next } \
        kind != "" && /^name *=/ { name = $0; sub(/^name *= *"/, "", name); sub(/".*/, "", name) } \
        kind != "" && /^path *=/ { path = $0; sub(/^path *= *"/, "", path); sub(/".*/, "", path) } \
        /^build *= *"/ { b = $0; sub(/^build *= *"/, "", b); sub(/".*/, "", b); print dir "/" b } \
        END { flush() }' "$manifest" \
      | while read -r stub; do mkdir -p "$(dirname "$stub")"; [ -f "$stub" ] || echo 'fn main() {}' > "$stub"; done; \
    done; \
    true

# ---------------------------------------------------------------------------- builder
FROM rust:1-bookworm AS builder
WORKDIR /src
# SQLX_OFFLINE: sqlx's query macros read the committed .sqlx/ data, not a live database.
ENV CARGO_TERM_COLOR=never \
    SQLX_OFFLINE=true
# 1. Dependencies only (cached until a manifest changes).
COPY --from=planner /recipe/ ./
RUN set -eu; \
    locked=""; [ -f Cargo.lock ] && locked="--locked"; \
    cargo build --release $locked -p playsource; \
    find . -name '*.rs' -type f -not -path './target/*' -delete
# 2. The real sources; touch them so cargo does not trust the stubs' fingerprints.
COPY . .
RUN set -eu; \
    find . -name '*.rs' -type f -not -path './target/*' -exec touch {} +; \
    locked=""; [ -f Cargo.lock ] && locked="--locked"; \
    cargo build --release $locked -p playsource; \
    install -m 0755 target/release/playsource /usr/local/bin/playsource

# ---------------------------------------------------------------------------- runtime
FROM debian:bookworm-slim AS runtime
RUN set -eu; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates tzdata; \
    rm -rf /var/lib/apt/lists/*; \
    useradd --system --uid 10001 --user-group --home-dir /nonexistent --shell /usr/sbin/nologin playsource; \
    mkdir -p /data/archive; \
    chown -R playsource:playsource /data
COPY --from=builder /usr/local/bin/playsource /usr/local/bin/playsource
COPY migrations /app/migrations
WORKDIR /app
USER playsource:playsource
ENV PLAYSOURCE_ARCHIVE=/data/archive \
    KAFKA_BROKERS=kafka:9092 \
    RUST_LOG=info
VOLUME ["/data"]
# 8080: `playsource serve` (API, dashboard, /metrics); 9464: `playsource stream` /metrics
# (listens on 127.0.0.1 unless PLAYSOURCE_METRICS_LISTEN says otherwise, e.g. 0.0.0.0:9464).
EXPOSE 8080 9464
ENTRYPOINT ["playsource"]
CMD ["--help"]
