# syntax=docker/dockerfile:1
# The rotator as a static binary on distroless, running as non-root.
#
#   docker build --build-arg VERSION=v0.1.0 --build-arg COMMIT=$(git rev-parse --short HEAD) -t unleash-rotator .
#
# The binary is built by scripts/build.sh, exactly as `make build` does, so
# the flags tested there are the flags shipped here.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY internal ./internal
COPY scripts/build.sh ./scripts/build.sh
ARG VERSION=dev
ARG COMMIT=unknown
ARG BUILD_DATE=unknown
RUN VERSION="$VERSION" COMMIT="$COMMIT" BUILD_DATE="$BUILD_DATE" scripts/build.sh /out/rotator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/rotator /usr/local/bin/rotator
COPY config.example.yaml /etc/unleash-rotator/config.example.yaml
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/rotator"]
CMD ["once", "--config", "/etc/unleash-rotator/config.yaml"]
