# syntax=docker/dockerfile:1.7
#
# market-streamer image: the market-streamer binary and the glibc libraries it links, on an
# empty base (FROM scratch), run as a non-root user, data in the /app/data volume. 18 MB
# uncompressed as measured by crates/extra-checks/tests/image.rs (deploy.sh prints the
# measured size after each build). `health_check` is not in the image: the container's
# HEALTHCHECK is `market-streamer probe`, and the operator runs `health_check` from the
# laptop through an SSH tunnel.
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
ARG BUILD_OUTPUT=builder

FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-slim-bookworm AS builder
ARG TARGETARCH
ARG BUILDARCH
WORKDIR /src

# The Rust target and C cross toolchain (ring and the bundled SQLite are built with cc) for
# TARGETARCH; nothing extra when building for the builder's own architecture.
RUN set -eux; \
    case "$TARGETARCH" in \
      amd64) triple=x86_64-unknown-linux-gnu; multiarch=x86_64-linux-gnu; interp=/lib64/ld-linux-x86-64.so.2; \
             cross="gcc-x86-64-linux-gnu libc6-dev-amd64-cross" ;; \
      arm64) triple=aarch64-unknown-linux-gnu; multiarch=aarch64-linux-gnu; interp=/lib/ld-linux-aarch64.so.1; \
             cross="gcc-aarch64-linux-gnu libc6-dev-arm64-cross" ;; \
      *) echo "unsupported target architecture: $TARGETARCH (use linux/amd64 or linux/arm64)" >&2; exit 1 ;; \
    esac; \
    echo "$triple" > /rust-target; \
    echo "$multiarch" > /multiarch; \
    echo "$interp" > /interp; \
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
    cargo build --release --locked --target "$triple" -p market-streamer --bins; \
    mkdir -p /out; \
    cp "target/$triple/release/market-streamer" /out/

# The runtime root file system, assembled here: the binary, the shared libraries it links
# (read from its ELF header: glibc's libc, libm, libgcc_s; the target's own copies when
# cross-compiling) with the dynamic loader at its standard path, a passwd/group entry for
# uid 10001, an empty /tmp (docker-compose.yml mounts a tmpfs there) and the /app/data
# volume owned by that user. No CA certificates (rustls carries the webpki roots) and no
# time zone files (chrono-tz embeds them).
RUN set -eux; \
    multiarch="$(cat /multiarch)"; interp="$(cat /interp)"; \
    if [ -d "/usr/$multiarch/lib" ] && [ "$TARGETARCH" != "$BUILDARCH" ]; then libdir="/usr/$multiarch/lib"; else libdir="/lib/$multiarch"; fi; \
    mkdir -p /rootfs/usr/local/bin "/rootfs/lib/$multiarch" "/rootfs$(dirname "$interp")" /rootfs/etc /rootfs/tmp /rootfs/app/data; \
    cp /out/market-streamer /rootfs/usr/local/bin/; \
    for lib in $(readelf -d /out/market-streamer | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do \
      cp -L "$libdir/$lib" "/rootfs/lib/$multiarch/"; \
    done; \
    cp -L "$libdir/$(basename "$interp")" "/rootfs$interp"; \
    echo 'app:x:10001:10001:market-streamer:/app:/nonexistent' > /rootfs/etc/passwd; \
    echo 'app:x:10001:' > /rootfs/etc/group; \
    chmod 1777 /rootfs/tmp; \
    chown -R 10001:10001 /rootfs/app

# Where the runtime stage takes /rootfs from: the builder stage above, or (for a build that
# cannot pull the Rust image, like the image test in crates/extra-checks/tests/image.rs) any
# local image holding the same /rootfs, named with --build-arg BUILD_OUTPUT=IMAGE.
FROM ${BUILD_OUTPUT} AS build-output

# Runtime stage: nothing but the assembled root file system.
FROM scratch AS runtime
COPY --from=build-output /rootfs/ /
COPY --from=build-output --chown=10001:10001 /rootfs/app/ /app/

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
# `market-streamer probe`: one plain GET /health, OK/WARNING/CRITICAL like health_check --url
# (exit 0 for ok; Docker counts any other exit as a failed check). No second binary.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["market-streamer", "probe", "--url", "http://127.0.0.1:8080", "--timeout", "5"]

ENTRYPOINT ["market-streamer"]
CMD ["run"]
