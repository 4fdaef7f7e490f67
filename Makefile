# `make run`: set up and run the DVC pipeline end to end.  `make test`: set up and run the tests.
# `make label`: set up and start a local Label Studio session for annotators (policytag annotate start).
# Both bootstrap the virtual environments they need from constraints files, so a fresh clone needs only python3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LS_VENV := .venv-ls
STAMP := $(VENV)/.installed
LS_STAMP := $(LS_VENV)/.installed

.PHONY: run test label setup setup-label-studio clean-venv

run: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

test: $(STAMP) $(LS_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

# LABEL_ARGS passes options on, e.g. make label LABEL_ARGS="--database postgresql://..."; stop: policytag annotate stop
label: $(STAMP) $(LS_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/policytag annotate start $(LABEL_ARGS)

setup: $(STAMP)
setup-label-studio: $(LS_STAMP)

# torch==2.13.0 in constraints.txt is the CPU build; for CUDA see README ("GPU").
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

# Label Studio pins its own dependencies, so it lives in a virtual environment of its own.
$(LS_STAMP): constraints-label-studio.txt
	$(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LS_VENV)/bin/python -m pip install --quiet -c constraints-label-studio.txt label-studio
	touch $@

clean-venv:
	rm -rf $(VENV) $(LS_VENV)
