#!/usr/bin/env bash
# check.sh - repository checks beyond the C tests: C formatting (clang-format), shell scripts
# (shellcheck), YAML (yamllint), docker-compose.yml under every profile, .env.example against the compose file, the configs
# (testbench validate), the Dockerfile's single source of dependencies, the docs' links, and
# that nothing points outside the repository.
# scripts/test.sh runs it last. Exits nonzero if any check fails.
#
# Environment:
#   CHECK_SKIP_VALIDATE=1  skip `testbench validate` (e.g. while the validator is not built)
#   CHECK_SKIP_LINKS=1     skip the docs link check (e.g. on a branch before the docs are merged)
#   TESTBENCH=PATH         the binary to validate with (default ./build/testbench)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

passed=0
failed=0
skipped=0
failures=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# check NAME COMMAND...: runs the command quietly; prints its output only when it fails.
check() {
    local name=$1
    shift
    if "$@" >"$log" 2>&1; then
        printf 'ok    %s\n' "$name"
        passed=$((passed + 1))
    else
        printf 'FAIL  %s\n' "$name"
        sed 's/^/      /' "$log"
        failed=$((failed + 1))
        failures+=("$name")
    fi
}

skip() {
    printf 'skip  %s (%s)\n' "$1" "$2"
    skipped=$((skipped + 1))
}

missing_tool() {
    echo "$1 is not installed (scripts/setup.sh dev installs it)"
    return 1
}

# --- shell scripts ------------------------------------------------------------------------
run_shellcheck() {
    command -v shellcheck >/dev/null || missing_tool shellcheck || return 1
    shellcheck scripts/*.sh .ci/run
}
check "shellcheck scripts/*.sh .ci/run" run_shellcheck

# --- C formatting (.clang-format) ------------------------------------------------------------
run_clang_format() {
    command -v clang-format >/dev/null || missing_tool clang-format || return 1
    git ls-files -z 'src/*.[ch]' 'tests/*.[ch]' 'bench/*.[ch]' 'fuzz/*.[ch]' |
        xargs -0 clang-format --dry-run --Werror
}
check "clang-format --dry-run (src, tests, bench, fuzz)" run_clang_format

# --- YAML ---------------------------------------------------------------------------------
yaml_targets=()
for t in configs catalog bench/validation docker-compose.yml tests/docker; do
    [ -e "$t" ] && yaml_targets+=("$t")
done
run_yamllint() {
    command -v yamllint >/dev/null || missing_tool yamllint || return 1
    yamllint -c .yamllint "${yaml_targets[@]}"
}
check "yamllint ${yaml_targets[*]}" run_yamllint

# --- docker compose -----------------------------------------------------------------------
# Debian's docker-compose (1.29, Python) understands profiles (>= 1.28) and GPU device requests.
# The Compose v2 plugin is used where v1 is absent.
compose=()
if command -v docker-compose >/dev/null; then
    compose=(docker-compose)
elif command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
fi

# Every ${VAR} the compose file reads must be documented in .env.example; an undocumented one
# would silently fall back to its default (or to an empty string) on a real server.
env_documented() {
    local vars v missing=0
    # "$${" is compose's escape for a literal "${" (the shell's own variables): not ours.
    vars=$(grep -oE '(^|[^$])[$][{][A-Za-z_][A-Za-z0-9_]*' docker-compose.yml |
        sed -E 's/^.?[$][{]//' | sort -u)
    for v in $vars; do
        if ! grep -Eq "^#? ?${v}=" .env.example; then
            echo "docker-compose.yml uses \${$v} but .env.example does not document it"
            missing=1
        fi
    done
    return "$missing"
}
check ".env.example documents every variable docker-compose.yml uses" env_documented

# compose_config PROFILES [-f OVERRIDE]: validates the file as compose sees it with those profiles
# active (and the override on top), with the values from .env.example; a warning about an unset
# variable counts as a failure.
compose_config() {
    [ ${#compose[@]} -gt 0 ] || missing_tool docker-compose || return 1
    local out profiles=$1
    shift
    out=$(COMPOSE_PROFILES=$profiles "${compose[@]}" --env-file .env.example -f docker-compose.yml \
        "$@" config -q 2>&1) || { echo "$out"; return 1; }
    if grep -qi 'variable is not set' <<<"$out"; then
        echo "$out"
        return 1
    fi
}
for profiles in "" benchmark monitoring sim partitioned mig tenancy \
    benchmark,monitoring,sim,partitioned,mig,tenancy; do
    check "compose config (profiles: ${profiles:-none})" compose_config "$profiles"
done
# The Docker suite's override (scripts/docker_test.sh): bench-sim on the host's network.
check "compose config (profile sim, tests/docker/compose.loopback.yml)" compose_config sim \
    -f tests/docker/compose.loopback.yml

# --- configs ------------------------------------------------------------------------------
tb=${TESTBENCH:-./build/testbench}
if [ "${CHECK_SKIP_VALIDATE:-0}" = 1 ]; then
    skip "testbench validate configs/*.yaml" "CHECK_SKIP_VALIDATE=1"
elif [ ! -x "$tb" ]; then
    skip "testbench validate configs/*.yaml" "$tb not built"
else
    for f in configs/*.yaml; do
        check "testbench validate --config $f" "$tb" validate --config "$f"
    done
    # Tenancy files are plan inputs, not run configs (docs/TENANCY.md): they must plan.
    for f in configs/tenancy/*.yaml; do
        check "testbench plan --tenancy $f" "$tb" plan --tenancy "$f" --json
    done
fi

# --- Dockerfile: scripts/setup.sh is the one source of dependencies ------------------------
dockerfile_uses_setup() {
    local bad=0
    # Join continuation lines so a package install split over lines is still seen.
    if sed -e ':a' -e '/\\$/N; s/\\\n//; ta' Dockerfile | grep -E '^\s*RUN\b' |
        grep -Eq '\b(apt-get|apt|aptitude|dpkg)\s+(-\S+\s+)*install\b|\bpip3?\s+install\b'; then
        echo "Dockerfile installs packages itself; add them to scripts/setup.sh instead"
        bad=1
    fi
    for stage in build runtime; do
        if ! grep -Eq "^\s*RUN\s+scripts/setup\.sh\s+$stage\b" Dockerfile; then
            echo "Dockerfile has no 'RUN scripts/setup.sh $stage'"
            bad=1
        fi
    done
    return "$bad"
}
check "Dockerfile installs dependencies only through scripts/setup.sh" dockerfile_uses_setup

# --- docs: relative links point at files that exist ---------------------------------------
docs_links() {
    local f target bad=0
    for f in README.md docs/*.md; do
        [ -f "$f" ] || continue
        # [text](target) links that are neither URLs nor in-page anchors; drop any #fragment.
        while IFS= read -r target; do
            target=${target%%#*}
            [ -n "$target" ] || continue
            if [ ! -e "$(dirname "$f")/$target" ]; then
                echo "$f: broken link to $target"
                bad=1
            fi
        done < <(grep -o '\]([^)]*)' "$f" | sed 's/^](//; s/)$//; s/ .*//' |
            grep -Ev '^(https?:|mailto:|#)')
    done
    return "$bad"
}
if [ "${CHECK_SKIP_LINKS:-0}" = 1 ]; then
    skip "relative links in README.md and docs/*.md resolve" "CHECK_SKIP_LINKS=1"
else
    check "relative links in README.md and docs/*.md resolve" docs_links
fi

# --- no pointers outside the repository ---------------------------------------------------
# The repository stands alone: no file may send a reader to notes that ship without it (the
# shared design, style and facts files next to the checkout). Cite the primary source instead
# (a datasheet URL, a model's config.json, a repository and file) or the project's own docs.
# The names are split with '' so this check does not match its own lines; .ci/ is the CI
# runner's, not the project's.
outside_pointers() {
    local pattern hits
    pattern='\.\./sha''red|(^|[^A-Za-z_])FAC''TS([^A-Za-z_]|$)|DESI''GN\.md|STY''LE\.md|STY''LE P[0-9]|SE''ED\.md'
    hits=$(git grep -n -I -E "$pattern" -- . ':!.ci')
    if [ -n "$hits" ]; then
        echo "$hits"
        echo "these lines point outside the repository; cite the primary source or docs/ instead"
        return 1
    fi
}
check "no pointers outside the repository" outside_pointers

echo
if [ "$failed" -gt 0 ]; then
    printf 'failed: %s\n' "${failures[@]}"
fi
echo "check: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
