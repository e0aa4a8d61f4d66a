# syntax=docker/dockerfile:1
# jetwatch in a container. From the repository root:
#   docker build -t jetwatch .
# See README "Running in Docker" for running it with a users file and NATS
# credentials.

# Build stage. mattn/go-sqlite3 needs cgo, so the binary links glibc
# dynamically: build on Debian 12 (bookworm) so that the runtime stage, also
# Debian 12, has the same glibc. The tag matches go.mod's toolchain.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The README's build command (cgo, -tags sqlite_fts5), with paths trimmed and
# the symbol table dropped. deploy/dockerfile_test.go runs this same line on
# the host and starts the binary it builds: keep it one plain command.
RUN CGO_ENABLED=1 go build -tags sqlite_fts5 -trimpath -ldflags=-s -o /out/jetwatch ./cmd/jetwatch
# An empty directory, copied below as the data volume owned by the runtime user.
RUN mkdir /out/data

# Runtime stage. distroless/base-debian12 is Debian 12's glibc, CA
# certificates and tzdata without a shell or package manager; the :nonroot
# tag runs as uid/gid 65532. debian:12-slim with a created user would work
# too, at several times the size and with a shell an attacker could use.
FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /out/jetwatch /usr/local/bin/jetwatch
# COPY creates /data (it did not exist) with this owner, so a volume mounted
# there starts writable by jetwatch.
COPY --from=build --chown=65532:65532 /out/data /data
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# Listening beyond loopback: jetwatch refuses to start on this address unless
# operators must sign in: mount a users file and set JETWATCH_USERS (or
# configure trusted-proxy auth); --insecure-no-auth is deliberately not set.
ENV JETWATCH_LISTEN=0.0.0.0:8080 \
    JETWATCH_DATA=/data
# The SQLite index and history. JetStream holds the dead letters and their
# status, so an empty volume is rebuilt from it at start.
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/jetwatch", "serve"]
