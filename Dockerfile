# syntax=docker/dockerfile:1
# tokentrace: the proxy (default entrypoint), the load tester and the supervisor in one small image.
# compose.yaml runs it as the proxy, the simulator (`supervisor simulate`) and the demo load (`loadtest attack`).
# The collector has its own image: otel-collector/Dockerfile.
#   docker build -t tokentrace .
#   docker run --rm -p 11435:11435 -p 9464:9464 tokentrace \
#     --listen=0.0.0.0:11435 --admin-listen=0.0.0.0:9464 --upstream=http://host.docker.internal:11434
# (the proxy listens on loopback by default, which a container's published ports cannot reach)

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./proxy ./loadtest ./supervisor

# distroless/static's debug variant: the same static base, plus busybox, whose wget is compose's healthcheck.
FROM gcr.io/distroless/static-debian12:debug-nonroot
COPY --from=build /out/ /usr/local/bin/
USER nonroot:nonroot
# 11435: the proxied APIs (Ollama /api/*, OpenAI /v1/*); 9464: admin (/metrics, /healthz, /readyz).
EXPOSE 11435 9464
ENTRYPOINT ["/usr/local/bin/proxy"]
CMD ["--listen=0.0.0.0:11435", "--admin-listen=0.0.0.0:9464"]
