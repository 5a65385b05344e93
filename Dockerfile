# syntax=docker/dockerfile:1.7
#
# market-streamer image: both binaries (market-streamer, health_check) on debian:bookworm-slim,
# run as a non-root user, data in the /app/data volume.
#
#   docker build --platform linux/amd64 -t market-streamer .     (deploy.sh does this for you)
#
# Build stage: runs on the machine that builds (BUILDPLATFORM) and cross-compiles for the
# target (TARGETPLATFORM), so an Apple Silicon laptop builds a linux/amd64 image natively
# instead of emulating the whole Rust build. Needs BuildKit (the default builder since
# Docker 23) for the cache mounts: the cargo registry and target/ persist between builds on
# the same machine, so a code change recompiles only this workspace, not its dependencies.
# Never build on the 512 MB box itself: rustc needs far more memory than it has.

ARG RUST_VERSION=1.95

FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-slim-bookworm AS builder
ARG TARGETARCH
ARG BUILDARCH
WORKDIR /src

# The Rust target and C cross toolchain (ring and the bundled SQLite are built with cc) for
# TARGETARCH; nothing extra when building for the builder's own architecture.
RUN set -eux; \
    case "$TARGETARCH" in \
      amd64) triple=x86_64-unknown-linux-gnu; cross="gcc-x86-64-linux-gnu libc6-dev-amd64-cross" ;; \
      arm64) triple=aarch64-unknown-linux-gnu; cross="gcc-aarch64-linux-gnu libc6-dev-arm64-cross" ;; \
      *) echo "unsupported target architecture: $TARGETARCH (use linux/amd64 or linux/arm64)" >&2; exit 1 ;; \
    esac; \
    echo "$triple" > /rust-target; \
    if [ "$TARGETARCH" != "$BUILDARCH" ]; then \
      apt-get update; \
      apt-get install -y --no-install-recommends $cross; \
      rm -rf /var/lib/apt/lists/*; \
      rustup target add "$triple"; \
    fi

# Linker and C compiler per target. Debian's native gcc also answers to these names, so the
# same settings work for native and cross builds.
ENV CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=x86_64-linux-gnu-gcc \
    CC_x86_64_unknown_linux_gnu=x86_64-linux-gnu-gcc \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    CARGO_TERM_COLOR=never

# The whole build context: .dockerignore leaves out tests, docs, deployment files, target/,
# .git and every .env, so only what the build reads (manifests, lock file, build script,
# sources, migrations) arrives here.
COPY . .

# Dependencies come from the cache mounts after the first build; --locked builds exactly
# Cargo.lock. target/ is a cache mount (one per machine; each target triple has its own
# folder in it), so the binaries are copied out in the same step.
RUN --mount=type=cache,id=cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=market-streamer-target,target=/src/target,sharing=locked \
    set -eux; \
    triple="$(cat /rust-target)"; \
    cargo build --release --locked --target "$triple" -p market-streamer -p health_check --bins; \
    mkdir -p /out; \
    cp "target/$triple/release/market-streamer" "target/$triple/release/health_check" /out/

# Runtime stage: the target platform's slim Debian (same glibc as the builder) with CA
# certificates, a non-root user and nothing else.
FROM debian:bookworm-slim AS runtime
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates; \
    rm -rf /var/lib/apt/lists/*; \
    useradd --system --uid 10001 --user-group --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin app; \
    mkdir -p /app/data; \
    chown app:app /app/data

COPY --from=builder /out/market-streamer /out/health_check /usr/local/bin/

LABEL org.opencontainers.image.title="market-streamer" \
      org.opencontainers.image.description="Schwab Streamer market data to PostgreSQL/Supabase or SQLite" \
      org.opencontainers.image.licenses="MIT"

# The working directory holds the volume, so the relative defaults land in it:
# DATABASE_URL sqlite://data/market.db, SPOOL_DIR data/spool, TOKEN_FILE
# data/schwab-tokens.json. The health endpoint listens on every interface inside the
# container; docker-compose.yml publishes it on the box's 127.0.0.1 only.
WORKDIR /app
ENV HEALTH_ADDR=0.0.0.0:8080
VOLUME ["/app/data"]
EXPOSE 8080
USER 10001:10001

# SIGTERM starts the graceful drain (SHUTDOWN_GRACE, 8 s by default); docker-compose.yml
# waits 12 s before SIGKILL.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["health_check", "--url", "http://127.0.0.1:8080", "--timeout", "5", "--color", "never"]

ENTRYPOINT ["market-streamer"]
CMD ["run"]
