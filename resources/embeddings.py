"""Text embeddings: a local model that works offline (default) or a voyage-style HTTP API.

The default backend is WordLlama (``l2_supercat_256``): its weights and tokenizer ship inside the
wheel, so nothing is downloaded at run time. ``WordLlama.load()`` with its defaults looks for the
tokenizer under ``tokenizer/`` in the package while the wheel ships ``tokenizers/``, and then tries
Hugging Face; pointing ``cache_dir`` at the package folder with ``disable_download=True`` loads
the shipped files and can never reach the network (a test asserts no socket is opened).

Every embedder returns L2-normalized float32 rows, so a dot product is the cosine similarity, and
names its model (``model_id``): vectors of different models are never compared.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Literal, Protocol

import dagster as dg
import numpy as np
import requests
from pydantic import Field
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential


class EmbeddingError(RuntimeError):
    """The embedding backend failed or answered something unusable."""


class Embedder(Protocol):
    model_id: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row L2-normalized (a zero row for an empty text)."""
        ...


def _normalize(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


_WORDLLAMA_LOCK = threading.Lock()
_WORDLLAMA: dict[str, Any] = {}


def load_wordllama(config: str = "l2_supercat", dim: int = 256) -> Any:
    """The model from the files inside the installed package; never downloads (cached per process)."""
    key = f"{config}:{dim}"
    with _WORDLLAMA_LOCK:
        if key not in _WORDLLAMA:
            import wordllama
            from wordllama import WordLlama

            package_dir = Path(wordllama.__file__).parent
            _WORDLLAMA[key] = WordLlama.load(config=config, dim=dim, cache_dir=package_dir, disable_download=True)
        return _WORDLLAMA[key]


class WordLlamaEmbedder:
    """Static token embeddings averaged per text (WordLlama): ~10 k short texts/s per core, no network."""

    def __init__(self, batch_size: int = 64, config: str = "l2_supercat", dim: int = 256) -> None:
        self.model = load_wordllama(config, dim)
        self.model_id = f"wordllama/{config}_{dim}"
        self.dim = dim
        self.batch_size = batch_size

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # batches are padded to their longest text: similar lengths together halve the work
        order = np.argsort(np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts)), kind="stable")
        out = self.model.embed([texts[i] for i in order], norm=False, batch_size=self.batch_size)
        result = np.empty_like(out)
        result[order] = out
        return _normalize(result)


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    return isinstance(exc, EmbeddingError) and "retryable" in str(exc)


class HttpEmbedder:
    """``POST {base_url}/embeddings`` with ``{"input": [...], "model": ...}`` (Voyage/OpenAI shape)."""

    def __init__(self, base_url: str, model: str, api_key: str | None, batch_size: int = 128,
                 timeout_seconds: float = 30.0) -> None:
        self.url = base_url.rstrip("/") + "/embeddings"
        self.model = model
        self.model_id = f"http/{model}"
        self.api_key = api_key
        self.batch_size = batch_size
        self.timeout = timeout_seconds
        self.dim = 0  # learnt from the first answer

    @retry(stop=stop_after_attempt(4), wait=wait_exponential(multiplier=0.5, max=8),
           retry=retry_if_exception(_transient), reraise=True)
    def _call(self, batch: list[str]) -> np.ndarray:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        resp = requests.post(self.url, json={"input": batch, "model": self.model}, headers=headers,
                             timeout=self.timeout)
        if resp.status_code == 429 or resp.status_code >= 500:
            raise EmbeddingError(f"embedding API answered {resp.status_code} (retryable)")
        if resp.status_code >= 400:
            raise EmbeddingError(f"embedding API answered {resp.status_code}: {resp.text[:200]}")
        try:
            data = sorted(resp.json()["data"], key=lambda d: d.get("index", 0))
            matrix = np.asarray([d["embedding"] for d in data], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingError(f"embedding API answer is not {{data: [{{embedding}}]}}: {exc}") from exc
        if matrix.ndim != 2 or matrix.shape[0] != len(batch):
            raise EmbeddingError(f"embedding API returned {matrix.shape[0]} vectors for {len(batch)} texts")
        return matrix

    def embed(self, texts: list[str]) -> np.ndarray:
        parts = [self._call(texts[i:i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        matrix = _normalize(np.vstack(parts))
        self.dim = int(matrix.shape[1])
        return matrix


class Embeddings(dg.ConfigurableResource):
    """Which embedder the people domain uses (built from ``YARNNN_EMBEDDING_*``)."""

    backend: Literal["wordllama", "http"] = Field(default="wordllama", description="wordllama | http")
    model: str = Field(default="l2_supercat_256", description="HTTP backend: the model name sent.")
    base_url: str | None = Field(default=None, description="HTTP backend: the API base URL.")
    api_key: str | None = Field(default=None, description="HTTP backend: bearer key (an EnvVar).")
    batch_size: int = Field(default=64, description="Texts per call (WordLlama pads a batch to its longest text).")
    chunk_chars: int = Field(default=1000, description="Characters per embedded chunk.")
    max_chunks_per_item: int = Field(default=12, description="Chunks per item; the rest is not embedded.")

    def embedder(self) -> Embedder:
        if self.backend == "http":
            if not self.base_url:
                raise EmbeddingError("YARNNN_EMBEDDING_BACKEND=http needs YARNNN_EMBEDDING_BASE_URL")
            return HttpEmbedder(self.base_url, self.model, self.api_key, batch_size=self.batch_size)
        return WordLlamaEmbedder(batch_size=self.batch_size)
