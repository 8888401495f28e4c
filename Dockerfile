# Dockerfile - the testbench image: one binary for `run`, `sim`, `plan`, `telemetry` and `validate`,
# and a stand-in for vLLM's image built from it.
#
#   docker build -t testbench:local .                               # the image (last stage)
#   docker run --rm testbench:local run --config /configs/sanity_check.yaml --sim
#   docker build --target vllm-sim -t testbench-vllm-sim:local .    # the vLLM stand-in
#
# Dependencies come only from scripts/setup.sh (one source of truth): `build` in the first stage,
# `runtime` (shared libraries, and Chart.js for `report`) in the others. The image builds the
# program alone, not its tests, to stay quick; the tests run with scripts/test.sh. docs/DEPLOY.md
# says how to build and run it on the GPU server; scripts/docker_test.sh tests it on a real
# Docker daemon.

ARG DEBIAN_IMAGE=debian:12-slim

############################ build ############################
FROM ${DEBIAN_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src

# The dependency layer first: it is rebuilt only when setup.sh changes, not on every source edit.
COPY scripts/setup.sh scripts/setup.sh
RUN scripts/setup.sh build && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

COPY . .
# .git is not sent, so the revision comes in as a build argument:
#   docker build --build-arg TB_GIT="$(git describe --always --dirty)" .
# The catalog may not exist in every tree: an empty folder keeps the COPY below valid.
ARG TB_GIT=unknown
RUN BUILD_TARGET=testbench scripts/build.sh -DTB_GIT="${TB_GIT}" \
    && strip --strip-debug build/testbench \
    && mkdir -p catalog

############################ runtime-base ############################
# What both images share: the libraries, the binary, the configs, a non-root user.
FROM ${DEBIAN_IMAGE} AS runtime-base
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

WORKDIR /opt/testbench
COPY scripts/setup.sh scripts/setup.sh
RUN scripts/setup.sh runtime && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

COPY --from=build /src/build/testbench /usr/local/bin/testbench
COPY --from=build /src/catalog /usr/local/share/testbench/catalog
COPY scripts/healthcheck.sh /usr/local/bin/testbench-healthcheck
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
# A `testbench sim` in the container is healthy when its GET /health answers 200; a container
# running anything else is healthy while it runs (scripts/healthcheck.sh).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/testbench-healthcheck"]

############################ vllm-sim ############################
# A stand-in for vllm/vllm-openai: its entrypoint is `vllm serve`, this one's `testbench sim`,
# which takes the same arguments (the model first or --model, --host, --port, --quantization,
# --kv-cache-dtype, --max-model-len, --gpu-memory-utilization, --tensor-parallel-size,
# --max-num-seqs, --[no-]enable-prefix-caching) and prints vLLM's KV-cache and concurrency lines.
# `testbench study --backend docker` with backend.image set to it runs the whole docker path on a
# machine without a GPU (backend.gpus: none). It imitates the simulator's default GPU, the
# RTX PRO 6000; a setup's extra_args can add `--gpu NAME`.
FROM runtime-base AS vllm-sim
ENTRYPOINT ["testbench", "sim"]

############################ runtime ############################
# The default target (the last stage): `docker build .` and docker-compose.yml's `build: .`.
FROM runtime-base AS runtime
ENTRYPOINT ["testbench"]
CMD ["run", "--config", "/configs/sanity_check.yaml"]
