# The operator image. Not built in this repository's CI (no container runtime there); see
# deploy/README.md.
#
# Build: docker build -t ghcr.io/example/starrocks-operator:0.1.0 .

FROM rust:1.89-bookworm AS build
WORKDIR /src
# The whole workspace: every member's manifest (and declared bench and test targets) must be
# present for cargo to load it, even though only the operator binary is built.
COPY . .
RUN cargo build --release --locked --bin starrocks-operator

# glibc and libgcc only, no shell; the `nonroot` tag runs as uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/starrocks-operator /usr/local/bin/starrocks-operator
USER 65532:65532
# `run` is the default command. Kubernetes `args` replace CMD (not ENTRYPOINT), so the
# Deployment's args, which start with `run`, give `starrocks-operator run --journal ...`.
ENTRYPOINT ["/usr/local/bin/starrocks-operator"]
CMD ["run"]
