# syntax=docker/dockerfile:1

# The order tracker in one static binary on a distroless base. The same image
# runs every role: docker-compose.yml starts it as `web` and as `worker`, and
# with no command it runs both in one process.
#
#     docker build -t ordertracker .
#     docker run -e DATABASE_URL=postgres://... -p 8080:8080 ordertracker

# The builder's Go is exactly the `go` line of go.mod, so the image builds with
# the toolchain the module asks for and never has to download another one
# (compose_test.go checks that the two agree).
FROM golang:1.26.8-bookworm AS build
WORKDIR /src

# Modules first, in a layer of their own: it is rebuilt only when go.mod or
# go.sum change, not on every edit of the code.
COPY go.mod go.sum ./
RUN go mod download

# The generated templ files are committed and the migrations, templates and
# static files are embedded, so building the binary is the whole build.
COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ordertracker .

# Distroless static: no shell and no package manager, CA certificates and time
# zone data included; the :nonroot tag runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ordertracker /ordertracker
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/ordertracker"]
# No CMD: with no command the program runs the web server and the worker in
# one process; compose passes `web` or `worker`.
