FROM python:3.11-slim

WORKDIR /app
ENV PYTHONUNBUFFERED=1 DATA_DIR=/app/data PYTHONMALLOC=malloc \
    MALLOC_TOP_PAD_=0 MALLOC_MMAP_THRESHOLD_=16384
COPY requirements.lock pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir -r requirements.lock && pip install --no-cache-dir --no-deps .

EXPOSE 5005
VOLUME ["/app/data"]
CMD ["chat2api", "serve", "--host", "0.0.0.0", "--port", "5005"]
