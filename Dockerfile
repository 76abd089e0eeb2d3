# syntax=docker/dockerfile:1
# Multi-stage build: a static portcullis binary on a distroless, non-root base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/portcullis ./cmd/portcullis \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/portcullis /usr/local/bin/portcullis
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV PORTCULLIS_DATA_DIR=/data
EXPOSE 5000
VOLUME ["/data"]
ENTRYPOINT ["/usr/local/bin/portcullis"]
CMD ["serve"]
