"""Deterministic fake embeddings for the framework tests (no model, no download): a text is
the normalised bag of its words, each word hashed to one of ``DIM`` dimensions, so texts
that share words are near and the nearest neighbours of a query can be known in advance."""

from __future__ import annotations

import hashlib
import math
import re

DIM = 64


def embed(text: str) -> list[float]:
    vector = [0.0] * DIM
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:4], "big") % DIM] += 1.0
    vector[0] += 0.01  # never the zero vector
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


# A small library: (text, metadata). Cats and dogs, near-duplicates among the cats.
LIBRARY = [
    ("cats purr and sleep in the sun", {"source": "pets", "n": 1}),
    ("cats purr and sleep in the warm sun", {"source": "pets", "n": 2}),
    ("cats purr and sleep in the sun all day", {"source": "pets", "n": 3}),
    ("dogs bark and fetch sticks in the park", {"source": "pets", "n": 4}),
    ("cats hunt mice at night", {"source": "wild", "n": 5}),
    ("the stock market fell on monday", {"source": "news", "n": 6}),
    ("rain is expected in the park on monday", {"source": "news", "n": 7}),
]
