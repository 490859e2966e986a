# syntax=docker/dockerfile:1
# Build. The cache mounts keep the registry and compiled dependencies between
# builds, so a change to the code does not rebuild every crate.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Cargo.toml names the bench, so cargo wants its file even for a release build.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY benches ./benches
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin otp-service \
    && cp target/release/otp-service /usr/local/bin/otp-service

# Run: the binary (migrations embedded), CA certificates for the gateway's
# HTTPS, and curl for the health check.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 otp \
    && useradd --system --uid 10001 --gid otp --no-create-home --shell /usr/sbin/nologin otp
COPY --from=build /usr/local/bin/otp-service /usr/local/bin/otp-service
# Numeric, so that runAsNonRoot-style checks can verify it.
USER 10001:10001
EXPOSE 8080
ENV OTP_LISTEN=0.0.0.0:8080
# Liveness only: a replica whose database is away stays up (see /readyz).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["otp-service"]
CMD ["serve"]
