# The worker and the starter in one small image: no shell, so run either
# binary directly (/usr/local/bin/worker is the default, or
# --entrypoint /usr/local/bin/starter). Runs as a non-root user.
# Go matches go.mod's go line.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false -o /out/ ./worker ./starter

# Distroless publishes no version tags; pin by digest if you need a fixed base.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/worker /out/starter /usr/local/bin/
# The worker's METRICS_ADDR port when set to 0.0.0.0:9464.
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/worker"]
