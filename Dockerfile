# Dockerfile - the testbench image: one binary for `run`, `sim`, `plan`, `telemetry` and `validate`.
#
#   docker build -t testbench:local .
#   docker run --rm testbench:local run --config /configs/sanity_check.yaml --sim
#
# Dependencies come only from scripts/setup.sh (one source of truth): `build` in the first stage,
# `runtime` (shared libraries, and Chart.js for `report`) in the second. The image builds no
# tests, to stay quick; the tests run with scripts/test.sh.

ARG DEBIAN_IMAGE=debian:12-slim

############################ build ############################
FROM ${DEBIAN_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src

# The dependency layer first: it is rebuilt only when setup.sh changes, not on every source edit.
COPY scripts/setup.sh scripts/setup.sh
RUN scripts/setup.sh build && rm -rf /var/lib/apt/lists/*

COPY . .
# .git is not sent, so the revision comes in as a build argument:
#   docker build --build-arg TB_GIT="$(git describe --always --dirty)" .
# The catalog may not exist in every tree: an empty folder keeps the COPY below valid.
ARG TB_GIT=unknown
RUN scripts/build.sh -DTB_GIT="${TB_GIT}" \
    && strip --strip-debug build/testbench \
    && mkdir -p catalog

############################ runtime ############################
FROM ${DEBIAN_IMAGE} AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

WORKDIR /opt/testbench
COPY scripts/setup.sh scripts/setup.sh
RUN scripts/setup.sh runtime && rm -rf /var/lib/apt/lists/*

COPY --from=build /src/build/testbench /usr/local/bin/testbench
COPY --from=build /src/catalog /usr/local/share/testbench/catalog
COPY configs/ /configs/

# A non-root user. uid 1000 is the usual first user on a host, so files in a bind-mounted ./results
# belong to that user; docker-compose.yml sets the uid from RUNNER_UID/RUNNER_GID for other hosts.
# /work/results points at /results so that configs with the default output_dir "results" (relative)
# write to /results as well.
RUN useradd --create-home --uid 1000 --user-group --shell /bin/bash testbench \
    && mkdir -p /work /results \
    && ln -s /results /work/results \
    && chown testbench:testbench /work /results

USER testbench
WORKDIR /work
# SIGINT is testbench's "stop and write what you have" signal: `docker stop` then leaves valid
# partial result files (exit 130) instead of losing the run.
STOPSIGNAL SIGINT
ENTRYPOINT ["testbench"]
CMD ["run", "--config", "/configs/sanity_check.yaml"]
