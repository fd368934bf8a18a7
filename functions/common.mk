# Shared rules for the per-function Makefiles (sam build, Metadata: BuildMethod: makefile).
#
# sam build copies the function's CodeUri (functions/<fn>/) to a scratch directory and runs
#   make --makefile functions/<fn>/Makefile build-<LogicalId>
# with ARTIFACTS_DIR set; the --makefile path is the original one, so the repository root is
# found from it, not from the working directory. Each artifact gets exactly:
#   - the wheels of functions/<fn>/requirements.txt, for the Lambda platform (not this machine's);
#   - the repository's handlers/, schemas/ and airlock/ packages, minus AIRLOCK_EXCLUDE;
#   - byte code compiled for python3.11 (the task directory is read-only at run time).
# Not for `sam build --use-container`: the container sees only the CodeUri folder.

FUNCTIONS_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
REPO_ROOT := $(abspath $(FUNCTIONS_DIR)/..)
PYTHON ?= python3

# python3.11 on Lambda runs on Amazon Linux 2 (glibc 2.26): manylinux2014 (= manylinux_2_17) wheels
# and older only. Keep in step with Architectures in template.yaml (manylinux2014_aarch64 for arm64).
PIP_PLATFORM ?= manylinux2014_x86_64
PIP_FLAGS := --quiet --disable-pip-version-check --no-input \
	--platform $(PIP_PLATFORM) --implementation cp --python-version 3.11 --abi cp311 \
	--only-binary=:all: --upgrade

# Files in wheels that nothing imports at run time: headers, Cython sources, stubs, test suites.
TRIM_DIRS := pyarrow/include pyarrow/tests pyarrow/src bin

# $(call airlock_artifact,<requirements file>,<extra tar excludes>)
define airlock_artifact
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: run through 'sam build'" >&2; exit 1; }
	mkdir -p "$(ARTIFACTS_DIR)"
	$(PYTHON) -m pip install $(PIP_FLAGS) --target "$(ARTIFACTS_DIR)" -r "$(1)"
	cd "$(REPO_ROOT)" && tar -cf - --exclude='__pycache__' --exclude='*.pyc' --exclude='*.egg-info' \
		--exclude='airlock/local' $(2) handlers schemas airlock | tar -xf - -C "$(ARTIFACTS_DIR)"
	cd "$(ARTIFACTS_DIR)" && rm -rf $(TRIM_DIRS) && find . -type f \( -name '*.pxd' -o -name '*.pyx' -o -name '*.pyi' \) -delete
	cd "$(ARTIFACTS_DIR)" && find . -name '__pycache__' -type d -prune -exec rm -rf {} +
	@if $(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then \
		$(PYTHON) -m compileall -q -j 0 --invalidation-mode unchecked-hash "$(ARTIFACTS_DIR)" >/dev/null || true; \
	else echo "note: $(PYTHON) is not 3.11, no byte code shipped" >&2; fi
endef
