# tickstream's container image: one static binary on a minimal base, run as an
# unprivileged user; deploy/kubernetes runs it as tickstream:latest.
#
#   make image                      # builds the dashboard first, so the binary embeds it
#   docker build -t tickstream .    # the same; without web/dist/app the node serves a plain index
#
# GO_IMAGE is the build stage: any image with Go 1.26 at /usr/local/go.
# RUNTIME_IMAGE is the base of the image: distroless/static has the CA
# certificates (for Kafka over TLS with a public CA) and no shell.
# The RUN steps use the exec form, so the build stage needs no shell either.
ARG GO_IMAGE=docker.io/library/golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
ARG VERSION=dev
ENV PATH=/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin \
    GOPATH=/go \
    GOCACHE=/root/.cache/go-build \
    CGO_ENABLED=0 \
    GOFLAGS="-trimpath -ldflags=-X=main.version=${VERSION}"
WORKDIR /src
COPY go.mod go.sum ./
RUN ["/usr/local/go/bin/go", "mod", "download"]
COPY . .
RUN ["/usr/local/go/bin/go", "build", "-o", "/out/tickstream", "./cmd/tickstream"]

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/tickstream /usr/local/bin/tickstream
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/tickstream"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
