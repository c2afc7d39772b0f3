"""The optional voyage-style HTTP embedder against a loopback API: batching, bearer key, retries on
429/5xx, clear errors on a bad answer."""

from __future__ import annotations

import numpy as np
import pytest

from resources.embeddings import EmbeddingError, Embeddings
from tests.fakes.loopback import LoopbackServer, Response


def _api(srv: LoopbackServer) -> None:
    def embed(req, _m):  # type: ignore[no-untyped-def]
        body = req.json()
        data = [{"index": i, "embedding": [float(len(t)), 1.0, 0.0]} for i, t in enumerate(body["input"])]
        return Response.json({"data": list(reversed(data)), "model": body["model"]})

    srv.route("POST", r"/v1/embeddings", embed)


def test_http_embedder_batches_retries_and_normalizes() -> None:
    with LoopbackServer("embeddings") as srv:
        _api(srv)
        srv.fail_next("POST", r"/v1/embeddings", [Response.json({"error": "busy"}, status=429)])
        embedder = Embeddings(backend="http", base_url=srv.url + "/v1", model="voyage-3-lite", api_key="k-1",
                              batch_size=2).embedder()
        out = embedder.embed(["a", "bbb", "cc"])
        assert out.shape == (3, 3) and np.allclose(np.linalg.norm(out, axis=1), 1.0)
        assert out[1][0] > out[0][0]  # answers put back in input order (the API sent them reversed)
        calls = srv.matching("POST", r"/v1/embeddings")
        assert len(calls) == 3  # one 429 retried, then two batches of at most 2
        assert calls[-1].headers.get("authorization") == "Bearer k-1"
        assert embedder.model_id == "http/voyage-3-lite"


def test_http_embedder_errors_are_clear() -> None:
    with LoopbackServer("embeddings") as srv:
        srv.route("POST", r"/v1/embeddings", lambda req, m: Response.json({"data": [{"embedding": [1.0]}]}))
        embedder = Embeddings(backend="http", base_url=srv.url + "/v1", model="m").embedder()
        with pytest.raises(EmbeddingError, match="1 vectors for 2 texts"):
            embedder.embed(["a", "b"])
        srv.fail_next("POST", r"/v1/embeddings", [Response.json({"error": "bad key"}, status=401)])
        with pytest.raises(EmbeddingError, match="401"):
            embedder.embed(["a"])
    with pytest.raises(EmbeddingError, match="YARNNN_EMBEDDING_BASE_URL"):
        Embeddings(backend="http").embedder()
